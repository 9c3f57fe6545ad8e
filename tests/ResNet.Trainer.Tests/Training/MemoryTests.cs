using System.Diagnostics;
using ResNet.Trainer.Data;
using ResNet.Trainer.Models;
using ResNet.Trainer.Tests.Native;
using ResNet.Trainer.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace ResNet.Trainer.Tests.Training;

[Collection(ProcessWideCounters.Name)] // resident memory is process-wide: nothing else runs beside this test
public class MemoryTests
{
    /// <summary>
    /// Every batch runs inside a dispose scope, so neither the tensors alive on the training thread nor the process's
    /// resident memory grow from epoch to epoch. A leak of one tensor per iteration would add 3 per epoch here; a leaked
    /// autograd graph (the activations of a step) about 5 MiB per iteration, 150 MiB over the measured epochs.
    /// </summary>
    [Fact]
    public void TwelveEpochs_LiveTensorsAndResidentMemory_StayFlat()
    {
        var data = TestData.Fashion(6); // 60 images: 3 batches of 20 per epoch
        var validation = TestData.Fashion(2, train: false);
        using var model = new ResNetModel(ResNetSpec.Cifar(1) with { InputChannels = 1, NumClasses = 10 }, seed: 2);
        var options = new TrainingOptions
        {
            Length = TrainingLength.Epochs(12), BatchSize = 20, LearningRate = 0.05, Schedule = new ConstantSchedule(), Augmentation = Augmentation.Cifar,
            Normalization = NormalizationKind.PerChannel, ImageSize = 28, Threads = 2, Seed = 3, CheckpointDirectory = TestData.TempDir(), // checkpoints and best weights written every epoch
        };
        var live = new List<long>();
        var resident = new List<long>();
        var progress = new Inline(p =>
        {
            if (p.Kind != ProgressKind.Epoch) return;
            live.Add(DisposeScopeManager.Statistics.ThreadTotalLiveCount);
            GC.Collect();
            GC.WaitForPendingFinalizers();
            using var self = Process.GetCurrentProcess();
            resident.Add(self.WorkingSet64);
        });
        var result = ResNetTrainer.Train(model, data, validation, options, progress);
        Assert.Equal(12, result.History.Count);
        Assert.Equal(12, live.Count);
        // The first epoch creates the lasting state (momentum buffers, the best weights); after it, not one tensor more.
        Assert.True(live.Skip(1).All(n => n == live[1]), $"live tensors after each epoch: {string.Join(", ", live)}");
        Assert.InRange(live[1] - live[0], 0, 0);
        long growth = resident[^1] - resident[2];
        Assert.True(growth < 40L << 20, $"resident memory per epoch (MiB): {string.Join(", ", resident.Select(r => r >> 20))}");
    }

    private sealed class Inline(Action<TrainingProgress> action) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => action(value);
    }
}

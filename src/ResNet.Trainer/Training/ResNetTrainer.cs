using System.Diagnostics;
using ResNet.Trainer.Data;
using ResNet.Trainer.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace ResNet.Trainer.Training;

/// <summary>
/// The training loop, top to bottom as in the paper's section 3.4: the machine, the data, the optimizer, the iterations,
/// the end of each epoch (validation, schedule, best weights, checkpoint), and the end of the run.
/// </summary>
public static class ResNetTrainer
{
    /// <summary>File name of the resumable checkpoint in <see cref="TrainingOptions.CheckpointDirectory"/>.</summary>
    public const string CheckpointFile = "last.ckpt";

    /// <summary>File name of the best-on-validation weights in <see cref="TrainingOptions.CheckpointDirectory"/>.</summary>
    public const string BestWeightsFile = "best.dat";

    /// <summary>Trains <paramref name="model"/> on <paramref name="train"/>.</summary>
    /// <param name="model">The network; its <see cref="ResNetSpec.NumClasses"/> must cover the data's classes.</param>
    /// <param name="train">Training images.</param>
    /// <param name="validation">Validation images; null holds out <see cref="TrainingOptions.ValidationFraction"/> of <paramref name="train"/> (or validates on none).</param>
    /// <param name="options">Hyper-parameters; null takes the defaults. Checked before anything else (<see cref="TrainingOptions.Validate"/>).</param>
    /// <param name="progress">Receives iteration, epoch and message events on the training thread.</param>
    /// <param name="cancellationToken">Stops after the current iteration, writes a checkpoint and returns with <see cref="StopReason.Cancelled"/>.</param>
    /// <exception cref="InvalidTrainingOptionException">An option is out of range.</exception>
    /// <exception cref="TrainingDivergedException">The loss or the weights became NaN or infinite.</exception>
    /// <exception cref="CheckpointMismatchException">Resuming from a checkpoint of another architecture or class list.</exception>
    /// <exception cref="DeviceUnavailableException">CUDA was requested and is not available.</exception>
    public static TrainingResult Train(ResNetModel model, IImageSource train, IImageSource? validation = null, TrainingOptions? options = null,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(train);
        var o = options ?? new TrainingOptions();
        o.Validate(model.Spec);
        var wall = Stopwatch.StartNew();
        var spec = model.Spec;
        void Say(string message) => progress?.Report(TrainingProgress.Note(message));

        // --- machine ---------------------------------------------------------------------------------
        if (o.Threads is int threads) torch.set_num_threads(threads);
        var device = Devices.Resolve(o.Device, Say);
        model.to(device);
        if (Native.CpuFeatures.Bf16Warning(o.Precision, device.type == DeviceType.CPU, Native.CpuFeatures.HasBf16) is string slow)
            progress?.Report(TrainingProgress.Warning(slow));
        if (Native.OneDnnGuard.Warning(device.type == DeviceType.CPU) is string kernels)
            progress?.Report(TrainingProgress.Warning(kernels));

        // --- data ------------------------------------------------------------------------------------
        if (train.ClassNames.Count > spec.NumClasses)
            throw new ArgumentException($"The training data has {train.ClassNames.Count} classes but {spec.Name} was built with NumClasses = {spec.NumClasses}. Build the model with NumClasses = {train.ClassNames.Count}.", nameof(model));
        if (validation is null && o.ValidationFraction > 0)
            (train, validation) = DatasetSplit.Stratified(train, o.ValidationFraction, o.Seed);
        var (height, width) = InputSize(train, o);
        string? checkpointPath = o.CheckpointDirectory is null ? null : Path.Combine(o.CheckpointDirectory, CheckpointFile);
        CheckpointState? resumed = null;
        if (o.Resume && checkpointPath is not null && File.Exists(checkpointPath))
            resumed = CheckCheckpoint(checkpointPath, spec, train.ClassNames);
        else if (o.Resume)
            Say($"No checkpoint to resume from{(checkpointPath is null ? " (no checkpoint folder given)" : $" at '{checkpointPath}'")}; starting a new run.");

        var normalization = resumed?.Normalization ?? o.FixedNormalization
            ?? Normalization.Compute(train, new ImagePipeline(spec.InputChannels, height, width, null, o.Augmentation), o.Normalization);
        var pipeline = new ImagePipeline(spec.InputChannels, height, width, normalization, o.Augmentation, o.RandomErasing);
        var loader = new BatchLoader(train, pipeline, new LoaderOptions
        {
            BatchSize = o.BatchSize, Shuffle = true, Augment = true, Seed = o.Seed, Workers = o.Workers, Prefetch = o.Prefetch,
            DropLast = train.Count > o.BatchSize, // a last batch of one image would break BatchNorm's statistics
        });
        var card = new ModelCard(spec, train.ClassNames, height, width, normalization, o.Augmentation);

        // --- optimizer and run state (section 3.4: SGD, momentum 0.9, weight decay) -------------------
        using var sgd = Sgd.ForModel(model, o.Momentum, o.WeightDecay, o.Nesterov, o.TrunkLearningRateFactor, o.DecayNormAndBias);
        var state = resumed ?? new CheckpointState
        {
            SpecJson = Checkpoint.SpecJson(spec), SpecName = spec.Name, Normalization = normalization, ClassNames = train.ClassNames,
            ImageHeight = height, ImageWidth = width, BatchSize = o.BatchSize, Seed = o.Seed,
        };
        using var run = new TrainingRun(model, sgd, o, device, state, loader.BatchesPerEpoch, progress);
        if (resumed is not null) run.Resume();

        // --- the iterations ----------------------------------------------------------------------------
        var stop = StopReason.Completed;
        for (int epoch = state.Epoch; epoch < run.Epochs && !run.Finished; epoch++)
        {
            run.BeginEpoch(epoch, resuming: resumed is not null && epoch == state.Epoch);
            foreach (var batch in loader.Epoch(epoch, run.BatchInEpoch))
            {
                if (run.Finished) break;
                if (cancellationToken.IsCancellationRequested)
                {
                    run.SaveCheckpoint(epochDone: false);
                    Say(run.LastCheckpoint is null ? $"Cancelled at iteration {run.Iteration}." : $"Cancelled at iteration {run.Iteration}; checkpoint written to '{run.LastCheckpoint}', training can resume from it.");
                    stop = StopReason.Cancelled;
                    break;
                }
                run.Step(batch);
            }
            if (stop == StopReason.Cancelled || run.EpochIsEmpty) break;

            // --- end of epoch: validate, adapt the schedule, keep the best, checkpoint ------------------
            EvaluationReport? report = validation is null ? null
                : Evaluator.Evaluate(run.EvaluatedModel, validation, pipeline, new EvaluationOptions { BatchSize = o.EvaluationBatchSize, Workers = o.Workers });
            run.EndEpoch(report);
            bool last = epoch + 1 >= run.Epochs || run.Finished;
            bool earlyStop = run.ShouldStopEarly(report);
            if (last || earlyStop || (epoch + 1) % o.CheckpointEvery == 0)
                run.SaveCheckpoint(epochDone: true);
            if (earlyStop)
            {
                Say($"Early stop: no validation improvement for {run.State.EpochsWithoutImprovement} epochs (best: epoch {run.State.BestEpoch}, {o.EarlyStoppingMetric} {run.State.BestValidationError:G4}).");
                stop = StopReason.EarlyStopped;
                break;
            }
        }

        // --- the end: the averaged weights (when kept), the best ones on validation, in evaluation mode --
        run.UseAveragedWeights();
        if (o.KeepBest && stop != StopReason.Cancelled) run.RestoreBest();
        model.eval();
        Native.GlibcAllocator.ReleaseFreeMemory(); // the heap kept between steps goes back to the kernel
        if (stop == StopReason.Cancelled) card = card with { InterruptedAtIteration = run.Iteration }; // the weights are those of that moment
        return new TrainingResult(model, card, run.History, run.State.BestEpoch, stop, run.LastCheckpoint, wall.Elapsed);
    }

    /// <summary>Throws when a weight or buffer of <paramref name="model"/> is NaN or infinite, so that no such model is written.</summary>
    internal static void EnsureFinite(ResNetModel model, string when, string? lastCheckpoint)
    {
        if (model.FirstNonFiniteTensor() is not string key) return;
        throw new TrainingDivergedException(
            $"The weights became NaN or infinite at the end of {when} (first: '{key}'); the model is not saved. " +
            "Try a lower learning rate or a warm-up, or check the images' normalization. " +
            (lastCheckpoint is null ? "No checkpoint had been written." : $"The last good checkpoint '{lastCheckpoint}' is kept."), lastCheckpoint);
    }

    private static (int Height, int Width) InputSize(IImageSource train, TrainingOptions o)
    {
        if (o.ImageSize is int size) return (size, size);
        return train switch
        {
            InMemoryImages m => (m.Height, m.Width),
            ImageFolderSource { ImageSize: { } folder } => (folder.Height, folder.Width),
            _ => train.Load(0) is var first ? (first.Height, first.Width) : default,
        };
    }

    private static CheckpointState CheckCheckpoint(string path, ResNetSpec spec, IReadOnlyList<string> classes)
    {
        var state = Checkpoint.ReadState(path);
        if (state.SpecJson != Checkpoint.SpecJson(spec))
            throw new CheckpointMismatchException(
                $"Checkpoint '{path}' was written for {state.SpecName} ({Describe(state.SpecJson)}), but the model is {spec.Name} ({Describe(Checkpoint.SpecJson(spec))}). " +
                $"Resume with the checkpoint's architecture, or start a new run with another checkpoint folder (in the CLI: another --output).", path);
        if (!state.ClassNames.SequenceEqual(classes))
            throw new CheckpointMismatchException(
                $"Checkpoint '{path}' was trained on classes [{string.Join(", ", state.ClassNames)}], but the data has [{string.Join(", ", classes)}]. " +
                "Resume on the same dataset, or start a new run in another checkpoint folder.", path);
        return state;
    }

    private static string Describe(string specJson)
    {
        var spec = System.Text.Json.JsonSerializer.Deserialize<ResNetSpec>(specJson, ModelCard.Json)!;
        return $"{spec.Depth} layers, {spec.InputChannels} input channel(s), {spec.NumClasses} classes";
    }

    /// <summary>Puts a checkpoint's weights and momentum into the run, and its averaged weights into <paramref name="averaged"/> when it has them.</summary>
    /// <returns>Whether the checkpoint held averaged weights (false: the run that wrote it kept none).</returns>
    internal static bool RestoreCheckpoint(string path, ResNetModel model, Sgd sgd, ResNetModel? averaged = null)
    {
        var (_, weights, momentum, average) = Checkpoint.Read(path);
        try
        {
            CopyInto(model, weights, path);
            sgd.LoadState(momentum);
            if (averaged is null || average.Count == 0) return false;
            CopyInto(averaged, average, path);
            return true;
        }
        finally
        {
            foreach (var w in weights.Values) w.Dispose();
            foreach (var m in momentum) m?.Dispose();
            foreach (var a in average.Values) a.Dispose();
        }
    }

    private static void CopyInto(ResNetModel model, Dictionary<string, Tensor> weights, string path)
    {
        using var _ = no_grad();
        foreach (var (key, t) in model.state_dict())
        {
            if (!weights.TryGetValue(key, out var w) || !w.shape.SequenceEqual(t.shape))
                throw new CheckpointMismatchException($"Checkpoint '{path}' has no tensor '{key}' of shape [{string.Join(", ", t.shape)}]. It belongs to another model; start a new run in another folder.", path);
            t.copy_(w);
        }
    }

    internal static Dictionary<string, Tensor> CopyState(nn.Module model, Dictionary<string, Tensor>? into)
    {
        if (into is not null) foreach (var t in into.Values) t.Dispose();
        using var _ = no_grad();
        // Under no_grad a clone carries no history; the scope disposes anything else made on the way.
        using var scope = NewDisposeScope();
        return model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone().DetachFromDisposeScope());
    }

    internal static CheckpointState UpdatePlateau(CheckpointState s, DivideOnPlateau plateau, double metric, Action<string> say)
    {
        if (metric < s.PlateauBest - plateau.MinImprovement) return s with { PlateauBest = metric, PlateauBad = 0 };
        int bad = s.PlateauBad + 1;
        if (bad < plateau.Patience) return s with { PlateauBad = bad };
        say($"No improvement for {bad} epochs: learning rate multiplied by {plateau.Gamma}.");
        return s with { PlateauFactor = s.PlateauFactor * plateau.Gamma, PlateauBad = 0, PlateauBest = Math.Min(s.PlateauBest, metric) };
    }
}

using System.Diagnostics;
using ResNet.Trainer.Data;
using ResNet.Trainer.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace ResNet.Trainer.Training;

/// <summary>
/// The training loop, top to bottom as in the paper's section 3.4: data, model, optimizer, schedule, the
/// iterations, evaluation, checkpoints.
/// </summary>
public static class Trainer
{
    /// <summary>File name of the resumable checkpoint in <see cref="TrainingOptions.CheckpointDirectory"/>.</summary>
    public const string CheckpointFile = "last.ckpt";

    /// <summary>File name of the best-on-validation weights in <see cref="TrainingOptions.CheckpointDirectory"/>.</summary>
    public const string BestWeightsFile = "best.dat";

    /// <summary>Trains <paramref name="model"/> on <paramref name="train"/>.</summary>
    /// <param name="model">The network; its <see cref="ResNetSpec.NumClasses"/> must cover the data's classes.</param>
    /// <param name="train">Training images.</param>
    /// <param name="validation">Validation images; null holds out <see cref="TrainingOptions.ValidationFraction"/> of <paramref name="train"/> (or validates on none).</param>
    /// <param name="options">Hyper-parameters; null takes the defaults.</param>
    /// <param name="progress">Receives iteration, epoch and message events on the training thread.</param>
    /// <param name="cancellationToken">Stops after the current iteration, writes a checkpoint and returns with <see cref="StopReason.Cancelled"/>.</param>
    /// <exception cref="TrainingDivergedException">The loss became NaN or infinite.</exception>
    /// <exception cref="CheckpointMismatchException">Resuming from a checkpoint of another architecture or class list.</exception>
    /// <exception cref="DeviceUnavailableException">CUDA was requested and is not available.</exception>
    public static TrainingResult Train(Models.ResNetModel model, IImageSource train, IImageSource? validation = null, TrainingOptions? options = null,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(train);
        var o = options ?? new TrainingOptions();
        var wall = Stopwatch.StartNew();
        var spec = model.Spec;
        void Say(string message) => progress?.Report(new TrainingProgress(ProgressKind.Message, 0, 0, 0, 0, 0, 0, null, null, 0, 0, TimeSpan.Zero, message));

        // --- machine ---------------------------------------------------------------------------------
        if (o.Threads is int threads) torch.set_num_threads(threads);
        var device = Devices.Resolve(o.Device, Say);
        model.to(device);

        // --- data ------------------------------------------------------------------------------------
        if (train.ClassNames.Count > spec.NumClasses)
            throw new ArgumentException($"The training data has {train.ClassNames.Count} classes but {spec.Name} was built with NumClasses = {spec.NumClasses}. Build the model with NumClasses = {train.ClassNames.Count}.", nameof(model));
        if (validation is null && o.ValidationFraction > 0)
            (train, validation) = DatasetSplit.Stratified(train, o.ValidationFraction, o.Seed);
        var (height, width) = InputSize(train, o);
        string? checkpointPath = o.CheckpointDirectory is null ? null : Path.Combine(o.CheckpointDirectory, CheckpointFile);
        string? bestPath = o.CheckpointDirectory is null ? null : Path.Combine(o.CheckpointDirectory, BestWeightsFile);
        CheckpointState? resumed = null;
        if (o.Resume && checkpointPath is not null && File.Exists(checkpointPath))
            resumed = CheckCheckpoint(checkpointPath, spec, train.ClassNames);
        else if (o.Resume)
            Say($"No checkpoint to resume from{(checkpointPath is null ? " (no checkpoint folder given)" : $" at '{checkpointPath}'")}; starting a new run.");

        var normalization = resumed?.Normalization ?? o.FixedNormalization
            ?? Normalization.Compute(train, new ImagePipeline(spec.InputChannels, height, width, null, o.Augmentation), o.Normalization);
        var pipeline = new ImagePipeline(spec.InputChannels, height, width, normalization, o.Augmentation);
        var loader = new BatchLoader(train, pipeline, new LoaderOptions
        {
            BatchSize = o.BatchSize, Shuffle = true, Augment = true, Seed = o.Seed, Workers = o.Workers, Prefetch = o.Prefetch,
            DropLast = train.Count > o.BatchSize, // a last batch of one image would break BatchNorm's statistics
        });
        long totalIterations = o.MaxIterations ?? (long)o.Epochs * loader.BatchesPerEpoch;
        int epochs = (int)((totalIterations + loader.BatchesPerEpoch - 1) / loader.BatchesPerEpoch);
        var card = new ModelCard(spec, train.ClassNames, height, width, normalization, o.Augmentation);

        // --- optimizer and run state (section 3.4: SGD, momentum 0.9, weight decay) -------------------
        using var sgd = new Sgd(model.parameters(), o.Momentum, o.WeightDecay, o.Nesterov);
        var s = resumed ?? new CheckpointState
        {
            SpecJson = Checkpoint.SpecJson(spec), SpecName = spec.Name, Normalization = normalization, ClassNames = train.ClassNames,
            ImageHeight = height, ImageWidth = width, BatchSize = o.BatchSize, Seed = o.Seed,
        };
        Dictionary<string, Tensor>? best = null;
        if (resumed is not null)
        {
            RestoreCheckpoint(checkpointPath!, model, sgd, device);
            if (bestPath is not null && File.Exists(bestPath)) best = ResNetWeights.ReadStateDict(bestPath);
            Say($"Resumed from '{checkpointPath}' at epoch {s.Epoch + 1}, iteration {s.Iteration}.");
        }
        string? lastCheckpoint = resumed is null ? null : checkpointPath;
        var warmupWindow = new Queue<double>(s.WarmupWindow);
        bool warmupDone = s.WarmupDone || o.Warmup is not WarmupUntilTrainError;
        var history = new List<EpochStats>(s.History);

        double LearningRate(long iteration, double epoch)
        {
            if (!warmupDone && o.Warmup is WarmupUntilTrainError w) return w.LearningRate;
            double factor = o.Schedule.Factor(new ScheduleClock(iteration, totalIterations, epoch)) * s.PlateauFactor;
            if (o.Warmup is LinearWarmup linear) factor *= linear.Factor(iteration);
            return o.LearningRate * factor;
        }

        long iteration = s.Iteration;
        CheckpointState Snapshot(int epoch, int batchInEpoch, double lossSum, long errors, long seen) => s with
        {
            Iteration = iteration, Epoch = epoch, BatchInEpoch = batchInEpoch, EpochLossSum = lossSum, EpochErrors = errors, EpochSeen = seen,
            WarmupDone = warmupDone, WarmupWindow = warmupWindow.ToArray(), History = history,
        };

        void SaveCheckpoint(CheckpointState state)
        {
            if (checkpointPath is null) return;
            Checkpoint.Save(checkpointPath, state, model, sgd.State);
            lastCheckpoint = checkpointPath;
        }

        // --- the iterations ----------------------------------------------------------------------------
        long imagesThisRun = 0;
        var stepClock = new Stopwatch();
        var stop = StopReason.Completed;
        for (int epoch = s.Epoch; epoch < epochs && iteration < totalIterations; epoch++)
        {
            var epochClock = Stopwatch.StartNew();
            bool resumingThisEpoch = resumed is not null && epoch == s.Epoch;
            int batchInEpoch = resumingThisEpoch ? s.BatchInEpoch : 0;
            double lossSum = resumingThisEpoch ? s.EpochLossSum : 0;
            long errors = resumingThisEpoch ? s.EpochErrors : 0, seen = resumingThisEpoch ? s.EpochSeen : 0;
            double lr = LearningRate(iteration, epoch);
            model.train();
            foreach (var batch in loader.Epoch(epoch, batchInEpoch))
            {
                if (iteration >= totalIterations) break;
                if (cancellationToken.IsCancellationRequested)
                {
                    SaveCheckpoint(Snapshot(epoch, batchInEpoch, lossSum, errors, seen));
                    Say(lastCheckpoint is null ? "Cancelled." : $"Cancelled; checkpoint written to '{lastCheckpoint}'. Resume with the same options and Resume = true.");
                    stop = StopReason.Cancelled;
                    break;
                }
                lr = LearningRate(iteration, epoch + (double)batchInEpoch / loader.BatchesPerEpoch);
                stepClock.Start();
                double loss;
                long wrong;
                using (var scope = NewDisposeScope())
                {
                    var x = tensor(batch.Data, batch.Shape).to(device);
                    var y = tensor(batch.Labels).to(device);
                    var logits = model.forward(x);
                    var objective = nn.functional.cross_entropy(logits, y, label_smoothing: o.LabelSmoothing);
                    loss = objective.item<float>();
                    if (!double.IsFinite(loss))
                        throw new TrainingDivergedException(
                            $"The training loss became {loss} at epoch {epoch + 1}, iteration {iteration + 1} (learning rate {lr:G4}). " +
                            $"Try a lower learning rate (e.g. {lr / 10:G4}), a warm-up, or check the images' normalization. " +
                            (lastCheckpoint is null ? "No checkpoint had been written." : $"The last good checkpoint '{lastCheckpoint}' is kept."), lastCheckpoint);
                    sgd.ZeroGrad();
                    objective.backward();
                    sgd.Step(lr);
                    wrong = logits.argmax(1).ne(y).sum().item<long>();
                }
                stepClock.Stop();
                iteration++; batchInEpoch++;
                imagesThisRun += batch.Count;
                lossSum += loss * batch.Count; errors += wrong; seen += batch.Count;
                if (!warmupDone && o.Warmup is WarmupUntilTrainError rule)
                {
                    warmupWindow.Enqueue((double)wrong / batch.Count);
                    if (warmupWindow.Count > rule.Window) warmupWindow.Dequeue();
                    if ((warmupWindow.Count == rule.Window && warmupWindow.Average() < rule.ErrorBelow) || iteration >= rule.MaxIterations)
                    {
                        warmupDone = true;
                        Say($"Warm-up done at iteration {iteration} (training error {warmupWindow.Average():P1}); learning rate back to the schedule.");
                    }
                }
                if (iteration % o.ProgressEvery == 0)
                    progress?.Report(Event(ProgressKind.Iteration, epoch, null));
            }
            if (stop == StopReason.Cancelled) break;
            if (seen == 0) break;

            // --- end of epoch: validate, adapt the schedule, keep the best, checkpoint ------------------
            EvaluationReport? report = validation is null ? null
                : Evaluator.Evaluate(model, validation, pipeline, new EvaluationOptions { BatchSize = o.EvaluationBatchSize, Workers = o.Workers });
            var stats = new EpochStats(epoch + 1, iteration, lossSum / seen, (double)errors / seen, report?.Loss, report?.Top1Error, lr, epochClock.Elapsed.TotalSeconds);
            history.Add(stats);
            s = s with { Iteration = iteration };
            if (o.Schedule is DivideOnPlateau plateau)
                s = UpdatePlateau(s, plateau, report?.Top1Error ?? stats.TrainLoss, Say);
            if (report is not null)
            {
                if (EarlyStopping.Improves(report, s.BestValidationError, o))
                {
                    s = s with { BestValidationError = EarlyStopping.Metric(report, o), BestEpoch = epoch + 1, EpochsWithoutImprovement = 0 };
                    best = CopyState(model, best);
                    if (bestPath is not null) ResNetWeights.Save(model, bestPath);
                }
                else s = s with { EpochsWithoutImprovement = s.EpochsWithoutImprovement + 1 };
            }
            progress?.Report(Event(ProgressKind.Epoch, epoch, stats));
            bool last = epoch + 1 >= epochs || iteration >= totalIterations;
            bool earlyStop = o.EarlyStoppingPatience is int patience && report is not null && s.EpochsWithoutImprovement >= patience;
            if (last || earlyStop || (epoch + 1) % Math.Max(1, o.CheckpointEvery) == 0)
                SaveCheckpoint(Snapshot(epoch + 1, 0, 0, 0, 0));
            if (earlyStop)
            {
                Say($"Early stop: no validation improvement for {s.EpochsWithoutImprovement} epochs (best: epoch {s.BestEpoch}, {o.EarlyStoppingMetric} {s.BestValidationError:G4}).");
                stop = StopReason.EarlyStopped;
                break;
            }

            TrainingProgress Event(ProgressKind kind, int e, EpochStats? done)
            {
                double perSecond = stepClock.Elapsed.TotalSeconds > 0 ? imagesThisRun / stepClock.Elapsed.TotalSeconds : 0;
                double secondsPerIteration = imagesThisRun > 0 ? stepClock.Elapsed.TotalSeconds * o.BatchSize / imagesThisRun : 0;
                return new TrainingProgress(kind, e + 1, epochs, iteration, totalIterations, lossSum / Math.Max(1, seen), (double)errors / Math.Max(1, seen),
                    done?.ValidationError, done?.ValidationLoss, lr, perSecond, TimeSpan.FromSeconds(secondsPerIteration * (totalIterations - iteration)));
            }
        }

        // --- the end: the best weights on validation, in evaluation mode ------------------------------
        if (o.KeepBest && best is not null && stop != StopReason.Cancelled)
        {
            using var _ = no_grad();
            foreach (var (key, t) in model.state_dict()) t.copy_(best[key]);
        }
        if (best is not null) foreach (var t in best.Values) t.Dispose();
        model.eval();
        Native.GlibcAllocator.ReleaseFreeMemory(); // the heap kept between steps goes back to the kernel
        return new TrainingResult(model, card, history, s.BestEpoch, stop, lastCheckpoint, wall.Elapsed);
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
                $"Resume with the checkpoint's architecture, or point --checkpoint-dir at an empty folder to start a new run.", path);
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

    private static void RestoreCheckpoint(string path, Models.ResNetModel model, Sgd sgd, Device device)
    {
        var (_, weights, momentum) = Checkpoint.Read(path);
        try
        {
            using var _ = no_grad();
            foreach (var (key, t) in model.state_dict())
            {
                if (!weights.TryGetValue(key, out var w) || !w.shape.SequenceEqual(t.shape))
                    throw new CheckpointMismatchException($"Checkpoint '{path}' has no tensor '{key}' of shape [{string.Join(", ", t.shape)}]. It belongs to another model; start a new run in another folder.", path);
                t.copy_(w);
            }
            sgd.LoadState(momentum);
        }
        finally
        {
            foreach (var w in weights.Values) w.Dispose();
            foreach (var m in momentum) m?.Dispose();
        }
    }

    private static Dictionary<string, Tensor> CopyState(nn.Module model, Dictionary<string, Tensor>? into)
    {
        if (into is not null) foreach (var t in into.Values) t.Dispose();
        using var _ = no_grad();
        // Under no_grad a clone carries no history; the scope disposes anything else made on the way.
        using var scope = NewDisposeScope();
        return model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone().DetachFromDisposeScope());
    }

    private static CheckpointState UpdatePlateau(CheckpointState s, DivideOnPlateau plateau, double metric, Action<string> say)
    {
        if (metric < s.PlateauBest - plateau.MinImprovement) return s with { PlateauBest = metric, PlateauBad = 0 };
        int bad = s.PlateauBad + 1;
        if (bad < plateau.Patience) return s with { PlateauBad = bad };
        say($"No improvement for {bad} epochs: learning rate multiplied by {plateau.Gamma}.");
        return s with { PlateauFactor = s.PlateauFactor * plateau.Gamma, PlateauBad = 0, PlateauBest = Math.Min(s.PlateauBest, metric) };
    }
}

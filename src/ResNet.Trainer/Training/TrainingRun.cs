using System.Diagnostics;
using ResNet.Trainer.Data;
using ResNet.Trainer.Models;
using static TorchSharp.torch;

namespace ResNet.Trainer.Training;

/// <summary>
/// The state of one training run and the steps that change it: where the run is (epoch, iteration, the current epoch's
/// sums), the learning rate, the warm-up, the history and the best weights so far. A checkpoint saves exactly this;
/// <see cref="ResNetTrainer.Train"/> drives it.
/// </summary>
internal sealed class TrainingRun : IDisposable
{
    private readonly ResNetModel _model;
    private readonly Sgd _sgd;
    private readonly TrainingOptions _o;
    private readonly Device _device;
    private readonly IProgress<TrainingProgress>? _progress;
    private readonly string? _checkpointPath, _bestPath;
    private readonly Queue<double> _warmupWindow;
    private readonly List<EpochStats> _history;
    private readonly Stopwatch _stepClock = new(), _epochClock = new();
    private CheckpointState _s;
    private Dictionary<string, Tensor>? _best;
    private readonly WeightAverage? _average;
    private long _averageUpdates;
    private bool _warmupDone;
    private long _imagesThisRun;
    private double _lossSum;
    private long _errors, _seen;

    public TrainingRun(ResNetModel model, Sgd sgd, TrainingOptions options, Device device, CheckpointState state, int batchesPerEpoch,
        IProgress<TrainingProgress>? progress)
    {
        (_model, _sgd, _o, _device, _s, _progress) = (model, sgd, options, device, state, progress);
        _checkpointPath = options.CheckpointDirectory is null ? null : Path.Combine(options.CheckpointDirectory, ResNetTrainer.CheckpointFile);
        _bestPath = options.CheckpointDirectory is null ? null : Path.Combine(options.CheckpointDirectory, ResNetTrainer.BestWeightsFile);
        BatchesPerEpoch = batchesPerEpoch;
        TotalIterations = options.Length.TotalIterations(batchesPerEpoch);
        Epochs = (int)((TotalIterations + batchesPerEpoch - 1) / batchesPerEpoch);
        Iteration = state.Iteration;
        _warmupWindow = new Queue<double>(state.WarmupWindow);
        _warmupDone = state.WarmupDone || options.Warmup is not WarmupUntilTrainError;
        _history = new List<EpochStats>(state.History);
        _average = options.EmaDecay is double decay ? new WeightAverage(model, decay, device) : null;
        _averageUpdates = state.EmaUpdates;
    }

    /// <summary>The model that validation, the best weights and the end of the run take: the moving average when the run keeps one.</summary>
    public ResNetModel EvaluatedModel => _average?.Model ?? _model;

    public int BatchesPerEpoch { get; }
    public long TotalIterations { get; }
    public int Epochs { get; }
    public long Iteration { get; private set; }

    /// <summary>The 0-based epoch in progress.</summary>
    public int Epoch { get; private set; }

    /// <summary>Batches of the current epoch already done.</summary>
    public int BatchInEpoch { get; private set; }

    /// <summary>The learning rate of the latest iteration.</summary>
    public double LearningRate { get; private set; }

    /// <summary>All iterations done.</summary>
    public bool Finished => Iteration >= TotalIterations;

    /// <summary>The current epoch has trained on no image (nothing to validate or record).</summary>
    public bool EpochIsEmpty => _seen == 0;

    public string? LastCheckpoint { get; private set; }
    public CheckpointState State => _s;
    public IReadOnlyList<EpochStats> History => _history;

    /// <summary>Continues from the checkpoint this run's state was read from: weights, momentum, the averaged weights and the best weights so far.</summary>
    public void Resume()
    {
        bool averaged = ResNetTrainer.RestoreCheckpoint(_checkpointPath!, _model, _sgd, _average?.Model);
        if (_average is not null && !averaged)
        {
            _average.Reset();
            _averageUpdates = 0;
            Say($"The checkpoint '{_checkpointPath}' holds no moving average of the weights (its run kept none); the average starts from the resumed weights.");
        }
        if (_bestPath is not null && File.Exists(_bestPath)) _best = ResNetWeights.ReadStateDict(_bestPath);
        LastCheckpoint = _checkpointPath;
        Say($"Resumed from '{_checkpointPath}' at epoch {_s.Epoch + 1}, iteration {_s.Iteration}.");
    }

    /// <summary>Starts epoch <paramref name="epoch"/>; the first epoch after a resume starts where the checkpoint was written.</summary>
    public void BeginEpoch(int epoch, bool resuming)
    {
        _epochClock.Restart();
        Epoch = epoch;
        BatchInEpoch = resuming ? _s.BatchInEpoch : 0;
        _lossSum = resuming ? _s.EpochLossSum : 0;
        _errors = resuming ? _s.EpochErrors : 0;
        _seen = resuming ? _s.EpochSeen : 0;
        LearningRate = Rate(epoch);
        _model.train();
    }

    /// <summary>One iteration on <paramref name="batch"/>; then the warm-up rule and the progress report.</summary>
    /// <exception cref="TrainingDivergedException">The loss is not finite; the weights are those of the last good step.</exception>
    public void Step(Batch batch)
    {
        LearningRate = Rate(Epoch + (double)BatchInEpoch / BatchesPerEpoch);
        _stepClock.Start();
        double loss;
        long wrong;
        using (var scope = NewDisposeScope())
        {
            var x = tensor(batch.Data, batch.Shape).to(_device);
            var y = tensor(batch.Labels).to(_device);
            // The compute type holds for the training step only: validation and scoring run in float32.
            _model.ComputeType = _o.Precision == TrainingOptions.Bf16 ? ScalarType.BFloat16 : null;
            try { (loss, wrong) = TrainingStep.Run(_model, _sgd, x, y, LearningRate, _o.LabelSmoothing); }
            finally { _model.ComputeType = null; }
        }
        if (!double.IsFinite(loss))
            throw new TrainingDivergedException(
                $"The training loss became {loss} at epoch {Epoch + 1}, iteration {Iteration + 1} (learning rate {LearningRate:G4}). " +
                $"Try a lower learning rate (e.g. {LearningRate / 10:G4}), a warm-up, or check the images' normalization. " +
                (LastCheckpoint is null ? "No checkpoint had been written." : $"The last good checkpoint '{LastCheckpoint}' is kept."), LastCheckpoint);
        _average?.Update(_averageUpdates++);
        _stepClock.Stop();
        Iteration++; BatchInEpoch++;
        _imagesThisRun += batch.Count;
        _lossSum += loss * batch.Count; _errors += wrong; _seen += batch.Count;
        if (!_warmupDone && _o.Warmup is WarmupUntilTrainError rule) WarmUp(rule, (double)wrong / batch.Count);
        if (Iteration % _o.ProgressEvery == 0) _progress?.Report(Progress(ProgressKind.Iteration, null));
    }

    /// <summary>
    /// Closes the epoch: records its figures, adapts a plateau schedule, keeps the best weights on validation, reports,
    /// and refuses weights that are no longer finite (so that no such model is checkpointed, saved or exported).
    /// </summary>
    public EpochStats EndEpoch(EvaluationReport? report)
    {
        var stats = new EpochStats(Epoch + 1, Iteration, _lossSum / _seen, (double)_errors / _seen, report?.Loss, report?.Top1Error, LearningRate, _epochClock.Elapsed.TotalSeconds);
        _history.Add(stats);
        _s = _s with { Iteration = Iteration };
        if (_o.Schedule is DivideOnPlateau plateau)
            _s = ResNetTrainer.UpdatePlateau(_s, plateau, report?.Top1Error ?? stats.TrainLoss, Say);
        if (report is not null)
        {
            if (EarlyStopping.Improves(report, _s.BestValidationError, _o))
            {
                _s = _s with { BestValidationError = EarlyStopping.Metric(report, _o), BestEpoch = Epoch + 1, EpochsWithoutImprovement = 0 };
                _best = ResNetTrainer.CopyState(EvaluatedModel, _best);
                if (_bestPath is not null) ResNetWeights.Save(EvaluatedModel, _bestPath);
            }
            else _s = _s with { EpochsWithoutImprovement = _s.EpochsWithoutImprovement + 1 };
        }
        _progress?.Report(Progress(ProgressKind.Epoch, stats));
        ResNetTrainer.EnsureFinite(_model, $"epoch {Epoch + 1}", LastCheckpoint);
        return stats;
    }

    /// <summary>The validation error has not improved for <see cref="TrainingOptions.EarlyStoppingPatience"/> epochs.</summary>
    public bool ShouldStopEarly(EvaluationReport? report) =>
        _o.EarlyStoppingPatience is int patience && report is not null && _s.EpochsWithoutImprovement >= patience;

    /// <summary>Writes the resumable checkpoint (when a folder is given): at the end of the epoch, or in the middle of it.</summary>
    public void SaveCheckpoint(bool epochDone)
    {
        if (_checkpointPath is null) return;
        var state = _s with
        {
            Iteration = Iteration, EmaUpdates = _averageUpdates, WarmupDone = _warmupDone, WarmupWindow = _warmupWindow.ToArray(), History = _history,
            Epoch = epochDone ? Epoch + 1 : Epoch, BatchInEpoch = epochDone ? 0 : BatchInEpoch,
            EpochLossSum = epochDone ? 0 : _lossSum, EpochErrors = epochDone ? 0 : _errors, EpochSeen = epochDone ? 0 : _seen,
        };
        Checkpoint.Save(_checkpointPath, state, _model, _sgd.State, _average?.Model);
        LastCheckpoint = _checkpointPath;
    }

    /// <summary>Writes the moving average of the weights into the trained model, when the run keeps one.</summary>
    public void UseAveragedWeights() => _average?.CopyTo(_model);

    /// <summary>Puts back the weights of the best epoch on validation, when there is one.</summary>
    public void RestoreBest()
    {
        if (_best is null) return;
        using var _ = no_grad();
        foreach (var (key, t) in _model.state_dict()) t.copy_(_best[key]);
    }

    public void Say(string message) => _progress?.Report(TrainingProgress.Note(message));

    public void Dispose()
    {
        if (_best is not null) foreach (var t in _best.Values) t.Dispose();
        _best = null;
        _average?.Dispose();
    }

    // The schedule's rate at a (fractional) epoch; the paper's ResNet-110 warm-up holds its own rate until it ends.
    private double Rate(double epoch)
    {
        if (!_warmupDone && _o.Warmup is WarmupUntilTrainError w) return w.LearningRate;
        double factor = _o.Schedule.Factor(new ScheduleClock(Iteration, TotalIterations, epoch)) * _s.PlateauFactor;
        if (_o.Warmup is LinearWarmup linear) factor *= linear.Factor(Iteration);
        return _o.LearningRate * factor;
    }

    // Paper section 4.2: ResNet-110 trains at 0.01 until the training error falls below 80%.
    private void WarmUp(WarmupUntilTrainError rule, double batchError)
    {
        _warmupWindow.Enqueue(batchError);
        if (_warmupWindow.Count > rule.Window) _warmupWindow.Dequeue();
        if ((_warmupWindow.Count == rule.Window && _warmupWindow.Average() < rule.ErrorBelow) || Iteration >= rule.MaxIterations)
        {
            _warmupDone = true;
            Say($"Warm-up done at iteration {Iteration} (training error {_warmupWindow.Average():P1}); learning rate back to the schedule.");
        }
    }

    private TrainingProgress Progress(ProgressKind kind, EpochStats? done)
    {
        double seconds = _stepClock.Elapsed.TotalSeconds;
        double perSecond = seconds > 0 ? _imagesThisRun / seconds : 0;
        double secondsPerIteration = _imagesThisRun > 0 ? seconds * _o.BatchSize / _imagesThisRun : 0;
        var eta = TimeSpan.FromSeconds(secondsPerIteration * (TotalIterations - Iteration));
        return done is not null
            ? TrainingProgress.EpochDone(done, Epochs, TotalIterations, perSecond, eta)
            : new TrainingProgress(kind, Epoch + 1, Epochs, Iteration, TotalIterations, _lossSum / Math.Max(1, _seen), (double)_errors / Math.Max(1, _seen),
                null, null, LearningRate, perSecond, eta);
    }
}

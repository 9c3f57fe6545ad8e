using Microsoft.ML;
using Microsoft.ML.Runtime;
using ResNet.Trainer.Data;
using ResNet.Trainer.Models;
using ResNet.Trainer.Onnx;
using ResNet.Trainer.Pretrained;
using ResNet.Trainer.Training;

namespace ResNet.MLNet.Transforms;

/// <summary>
/// Trains a ResNet on an IDataView's image and key-label columns with the TorchSharp engine, exports it to ONNX,
/// and returns a <see cref="ResNetScoringTransformer"/> that scores with ONNX Runtime.
/// </summary>
public sealed class ResNetClassifierEstimator : IEstimator<ResNetScoringTransformer>
{
    /// <summary>
    /// Options of <see cref="ResNetClassifierEstimator"/>. Every field has a default that works. The training fields
    /// (<c>Recipe</c>, <c>Epochs</c>, <c>LearningRate</c>, <c>Seed</c>, <c>CheckpointDirectory</c>, ...) are those of
    /// <see cref="TrainingOverrides"/>, with the same names and defaults as <c>resnet train</c>: each one left unset keeps the recipe's value.
    /// </summary>
    public sealed record Options : TrainingOverrides
    {
        /// <summary>Architecture name (<c>resnet20</c>, <c>resnet56</c>, <c>resnet18</c>, <c>plain-20</c>, ...; see <see cref="ResNetNames"/>). Default <c>resnet20</c>.</summary>
        public string Architecture { get; set; } = "resnet20";

        /// <summary>
        /// The image column: an image (LoadImages), encoded bytes (LoadRawImageBytes) or a path. Default <c>Image</c>. Fit holds only
        /// the paths (an image column is read through the path column LoadImages loaded it from) or the encoded bytes, and decodes
        /// each batch as training needs it, so the data may be larger than memory.
        /// </summary>
        public string ImageColumnName { get; set; } = "Image";

        /// <summary>Folder that relative paths in a path-typed image column are resolved against. Default: none.</summary>
        public string? ImageFolder { get; set; }

        /// <summary>The label column, a key type (from MapValueToKey). Default <c>Label</c>.</summary>
        public string LabelColumnName { get; set; } = "Label";

        /// <summary>Output column with one probability per class. Default <c>Score</c>.</summary>
        public string ScoreColumnName { get; set; } = "Score";

        /// <summary>Output column with the predicted class as a key. Default <c>PredictedLabel</c>.</summary>
        public string PredictedLabelColumnName { get; set; } = "PredictedLabel";

        /// <summary>Input channels: 1 (grayscale) or 3 (RGB). Default 3.</summary>
        public int Channels { get; set; } = 3;

        /// <summary>Validation data, scored after every epoch for best-epoch selection and early stopping. Default: none
        /// (the recipe's <c>ValidationFraction</c> of the training rows is held out instead).</summary>
        public IDataView? ValidationSet { get; set; }

        /// <summary>Weights to start from (<c>.pth</c>, <c>.safetensors</c>, <c>.dat</c>) for the same architecture; the classifier is
        /// re-initialised when its class count differs. Default: random He initialisation.</summary>
        public string? PretrainedWeights { get; set; }

        /// <summary>
        /// Start from a pretrained network of the catalog instead of <see cref="Architecture"/>: an entry of
        /// <see cref="ResNetPretrained"/> (<c>ResNetPretrained.ResNet50</c>) or its name (<c>"resnet50"</c>, <c>"resnet50:IMAGENET1K_V1"</c>,
        /// <c>"cntk-resnet18"</c> for the trunk of NuGet <c>Microsoft.ML.DnnImageFeaturizer.ResNet18</c>). torchvision's files are
        /// fetched on first use and cached (<see cref="WeightsCache"/>). The entry's resize and centre crop prepare every image,
        /// so the image column must hold paths or encoded bytes (a torchvision entry); the recipe defaults to fine-tuning's
        /// (<c>fine-tune</c>). Default: none.
        /// </summary>
        public PretrainedWeights? PretrainedModel { get; set; }

        /// <summary>Folder with the DnnImageFeaturizer models; default <c>DnnImageModels</c> in the app's folder, where the package puts them.</summary>
        public string? PretrainedModelsDirectory { get; set; }

        /// <summary>
        /// Train only the final fully connected layer: the trunk's pooled features are computed once per image and cached,
        /// then the classifier is trained on them (fast; no augmentation). Default false: every layer is trained (fine-tuning).
        /// Head-only training uses the length, batch size (at most 64), learning rate (default 0.05), momentum (0.9), weight decay
        /// (1e-4), seed, image size and normalization; setting an option it has no use for (EmaDecay, Precision, LabelSmoothing,
        /// Nesterov, Schedule, Warmup, TrunkLearningRateFactor, DecayNormAndBias, Augmentation, RandomErasing) is refused.
        /// </summary>
        public bool FreezeBackbone { get; set; }

        /// <summary>
        /// Folder where head-only training (<see cref="FreezeBackbone"/>) keeps the trunk's features between fits, as ML.NET's
        /// <c>WorkspacePath</c> with <c>ReuseTrainSetBottleneckCachedValues</c> does: a second fit on the same images, with the
        /// same trunk and preprocessing, reads them instead of computing them. Files are keyed by a hash of those inputs, so a
        /// changed input is computed (and stored) afresh; a damaged file is computed again with a warning. Default: none.
        /// </summary>
        public string? WorkspaceFolder { get; set; }

        /// <summary>Receives progress (iteration, epoch, loss, errors, learning rate, images/s, ETA). Default: none.</summary>
        public IProgress<TrainingProgress>? MetricsCallback { get; set; }

        /// <summary>Also write TensorBoard logs (loss, errors, learning rate, images/s per iteration and epoch) to this folder. Default: none.</summary>
        public string? TensorBoardFolder { get; set; }

        /// <summary>Stops training after the current iteration (a checkpoint is written when <c>CheckpointDirectory</c> is set). Default: none.</summary>
        public CancellationToken CancellationToken { get; set; }

        /// <summary>
        /// Skip rows whose image cannot be decoded (with a warning) instead of failing. Default false. Headers are checked before
        /// training; an image that fails only when a batch decodes it is replaced by another image of its class.
        /// </summary>
        public bool SkipUndecodableImages { get; set; }

        /// <summary>Images per ONNX Runtime call when scoring. Default 32.</summary>
        public int ScoringBatchSize { get; set; } = 32;

        /// <summary>ONNX Runtime intra-op threads when scoring; 0 leaves ONNX Runtime's default.</summary>
        public int ScoringThreads { get; set; }

        // The training settings this estimator runs with: the user's over the recipe, plus what the data decides
        // (the image size, no hold-out when a validation set is given, resuming from a non-empty checkpoint folder).
        internal TrainingOptions Training(ResNetSpec spec, int imageSize, Normalization? pretrainedNormalization) => (this with
        {
            Recipe = Recipe ?? Recipes.DefaultFor(PretrainedModel is not null),
            ImageSize = imageSize,
            ValidationFraction = ValidationSet is null ? ValidationFraction : 0,
            FixedNormalization = FixedNormalization ?? pretrainedNormalization,
            Resume = Resume ?? (CheckpointDirectory is not null && Directory.Exists(CheckpointDirectory) && Directory.EnumerateFiles(CheckpointDirectory).Any()),
        }).Resolve(spec);
    }

    private readonly IHostEnvironment _env;
    private readonly MLEnvironment _ml;
    private readonly Options _options;

    /// <summary>Creates the estimator; <c>mlContext.Transforms.ResNetClassifier(...)</c> is the usual route.</summary>
    public ResNetClassifierEstimator(MLContext mlContext, Options options)
        : this((IHostEnvironment)(mlContext ?? throw new ArgumentNullException(nameof(mlContext))), options)
    {
    }

    // The first training option set that head-only training does not read (it takes the length, batch size, learning rate,
    // momentum, weight decay, seed, image size and normalization), with its value; null when there is none.
    private static (string Option, string Value)? HeadOnlyUnused(Options o) =>
        o.EmaDecay is double ema ? (nameof(o.EmaDecay), ema.ToString("R", System.Globalization.CultureInfo.InvariantCulture))
        : o.Precision is string precision ? (nameof(o.Precision), precision)
        : o.LabelSmoothing is double smoothing ? (nameof(o.LabelSmoothing), smoothing.ToString("R", System.Globalization.CultureInfo.InvariantCulture))
        : o.Nesterov is bool nesterov ? (nameof(o.Nesterov), nesterov ? "true" : "false")
        : o.Schedule is { } schedule ? (nameof(o.Schedule), schedule.ToString()!)
        : o.Warmup is { } warmup ? (nameof(o.Warmup), warmup.ToString()!)
        : o.TrunkLearningRateFactor is double factor ? (nameof(o.TrunkLearningRateFactor), factor.ToString("R", System.Globalization.CultureInfo.InvariantCulture))
        : o.DecayNormAndBias is bool decay ? (nameof(o.DecayNormAndBias), decay ? "true" : "false")
        : o.Augmentation is { } augmentation ? (nameof(o.Augmentation), augmentation.ToString()!)
        : null;

    internal ResNetClassifierEstimator(IHostEnvironment env, Options options)
    {
        _env = env.RegisterResNet();
        _options = options ?? throw new ArgumentNullException(nameof(options));
        if (options.Channels is not (1 or 3))
            throw new ArgumentOutOfRangeException(nameof(options), options.Channels, "Options.Channels must be 1 (grayscale) or 3 (RGB).");
        if (options.WorkspaceFolder is { } workspace && (!options.FreezeBackbone || workspace.Length == 0 || File.Exists(workspace)))
            throw new InvalidTrainingOptionException(nameof(Options.WorkspaceFolder), $"'{workspace}'", !options.FreezeBackbone
                ? "it keeps the features of head-only training: set FreezeBackbone = true as well, or leave it unset (CheckpointDirectory keeps checkpoints of full training)"
                : "give a folder (it is created when missing), not an empty name or an existing file");
        if (options.FreezeBackbone && options.RandomErasing is > 0)
            throw new InvalidTrainingOptionException(nameof(Options.RandomErasing), options.RandomErasing.Value.ToString("R", System.Globalization.CultureInfo.InvariantCulture),
                "head-only training computes each image's features once, unaugmented, so nothing could be erased: leave it unset, or set FreezeBackbone = false to train the whole network with it");
        if (options.FreezeBackbone && HeadOnlyUnused(options) is (string unused, string value))
            throw new InvalidTrainingOptionException(unused, value,
                "head-only training (FreezeBackbone) trains the classifier alone, with SGD on features computed once, and has no use for it: leave it unset, " +
                "or set FreezeBackbone = false to train the whole network with it");
        // The exported model's scorer applies the entry's resize and crop in the ML.NET pipeline: refuse one it cannot apply now, not after training.
        if (options.PretrainedModel?.Transform?.Geometry is { } g && !ResizeCropImages.Supported.Contains(g))
            throw new InvalidTrainingOptionException(nameof(Options.PretrainedModel), $"'{options.PretrainedModel.Name}' (resize {g.ResizeSize}, crop {g.CropSize})",
                "ML.NET pipelines apply the catalog's preprocessing only (" + string.Join(", ", ResizeCropImages.Supported.Select(s => $"resize {s.ResizeSize}, crop {s.CropSize}")) +
                "); use a catalog entry's Transform, or train with `resnet train` and score with OnnxScorer.ScoreFiles, which applies any");
        // Fail on a bad architecture name or training value now, not after loading the data.
        var spec = ResNetSpec.Parse(options.Architecture) with { InputChannels = options.Channels };
        _ = options.Training(spec, options.ImageSize ?? spec.DefaultImageSize, null);
        // ML.NET's own transforms used inside (decode, resize, pixels, ONNX) are built in the caller's context: its log and GPU settings apply.
        _ml = MLEnvironment.Of(env);
    }

    /// <summary>Images the normalization statistics are computed from: an evenly spaced sample, so large views start training quickly.</summary>
    internal const int NormalizationSample = 1_000;

    /// <summary>The count and decodes of the last <see cref="Fit"/>'s training images, set before training starts (tests count decodes).</summary>
    internal DataViewImages.Statistics? TrainingImages { get; private set; }

    /// <summary>What <see cref="Fit"/> last trained: epochs, losses, errors, stop reason. Null before the first fit.</summary>
    public TrainingResult? LastTraining { get; private set; }

    /// <inheritdoc />
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        // The schema check that matters runs on the real schema in Fit; here the columns' presence and kinds are checked.
        if (!SchemaShapes.Has(inputSchema, _options.ImageColumnName, out _))
            throw new SchemaMismatchException($"Image column '{_options.ImageColumnName}' was not found in the input. Add mlContext.Transforms.LoadImages(...) or pass the right imageColumnName.");
        if (!SchemaShapes.Has(inputSchema, _options.LabelColumnName, out var label))
            throw new SchemaMismatchException($"Label column '{_options.LabelColumnName}' was not found in the input. Pass the right labelColumnName.");
        if (!label.IsKey)
            throw new SchemaMismatchException(
                $"Label column '{_options.LabelColumnName}' has type {label.ItemType}; expected a key type. Add this before the ResNet estimator: " +
                $"mlContext.Transforms.Conversion.MapValueToKey(\"{_options.LabelColumnName}\")");
        // The class count is known only once the data is seen: the shape says "a vector of scores" and "a key".
        return SchemaShapes.WithScores(inputSchema, _options.ScoreColumnName, _options.PredictedLabelColumnName, ["class"]);
    }

    /// <summary>Trains, exports to ONNX and returns the scoring transformer.</summary>
    /// <exception cref="SchemaMismatchException">A column is missing or of the wrong type; the message says which and what to add.</exception>
    public ResNetScoringTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var o = _options;
        // A second fit replaces the network it handed out in LastTraining: release the first one's native memory.
        LastTraining?.Model.Dispose();
        LastTraining = null;
        using var ch = _env.Start("ResNetClassifier");
        var kind = ImagePreprocessing.Classify(input.Schema, o.ImageColumnName);
        string[] classes = TrainingDataReader.ClassNames(input.Schema, o.LabelColumnName);
        using (var rows = input.GetRowCursor([]))
            if (!rows.MoveNext())
                throw new InvalidDataException("The training data has no rows. Check the IDataView given to Fit (e.g. the folder it was loaded from, or a filter that removed every row).");
        if (classes.Length < 2)
            throw new InvalidDataException($"Label column '{o.LabelColumnName}' has {classes.Length} class; a classifier needs at least 2.");

        var archSpec = ResNetSpec.Parse(o.Architecture) with { InputChannels = o.Channels, NumClasses = classes.Length };
        int seed = o.Training(archSpec, o.ImageSize ?? archSpec.DefaultImageSize, null).Seed;
        // A catalog entry's resize and crop need the original image: checked before its weights are fetched.
        var geometry = o.PretrainedModel?.Transform?.Geometry;
        if (geometry is not null)
            ImagePreprocessing.RequireOriginal(kind, o.ImageColumnName, geometry);
        PretrainedNetwork? pretrained = o.PretrainedModel is { } entry
            ? PretrainedLoader.Load(entry, classes.Length, seed, progress: new Progress<DownloadProgress>(d => ch.Info(MessageSensitivity.None, "{0}", "ResNet: " + d)),
                dnnModelsDirectory: o.PretrainedModelsDirectory ?? ResNetFeaturizerEstimator.DefaultDnnModelsDirectory)
            : null;
        var spec = pretrained?.Model.Spec ?? archSpec;
        int size = pretrained?.ImageSize ?? o.ImageSize ?? spec.DefaultImageSize;
        int channels = spec.InputChannels;
        void Warn(string m) { ch.Warning(MessageSensitivity.None, "{0}", m); o.MetricsCallback?.Report(TrainingProgress.Note(m)); }
        var options = o.Training(spec, size, pretrained?.Normalization);

        // Only references and labels are read here; the loader decodes each batch. Augmentations that rescale (ImageNet's)
        // get the original image; the others get it at the training size, cropped as the scorer's IsoCrop resize crops it.
        // A catalog entry's resize and crop also need the original (applied below, as the exported model's scorer applies it).
        int? presentAt = geometry is not null || (!o.FreezeBackbone && options.Augmentation is ImageNetAugmentation) ? null : size;
        var train = TrainingDataReader.Read(input, kind, o.ImageColumnName, o.ImageFolder, o.LabelColumnName, classes, channels, presentAt, o.SkipUndecodableImages, Warn);
        TrainingImages = train.Stats;
        ch.Info(MessageSensitivity.None, "{0}", $"ResNet: {train.Count} training images, {classes.Length} classes, {spec.Name} at {channels}x{size}x{size}");
        DataViewImages? validation = null;
        if (o.ValidationSet is not null)
        {
            var vKind = ImagePreprocessing.Classify(o.ValidationSet.Schema, o.ImageColumnName);
            string[] vClasses = TrainingDataReader.ClassNames(o.ValidationSet.Schema, o.LabelColumnName);
            if (!vClasses.SequenceEqual(classes))
                throw new InvalidDataException(
                    $"The validation set's label keys ({string.Join(", ", vClasses.Take(10))}) differ from the training set's ({string.Join(", ", classes.Take(10))}). " +
                    "Fit one MapValueToKey on the training data and apply the same transformer to both.");
            validation = TrainingDataReader.Read(o.ValidationSet, vKind, o.ImageColumnName, o.ImageFolder, o.LabelColumnName, classes, channels, presentAt, o.SkipUndecodableImages, Warn);
        }
        // With a catalog entry: evaluation (and training, unless its augmentation crops the original itself) sees the entry's crop.
        var entryTransform = o.PretrainedModel?.Transform;
        IImageSource trainImages = entryTransform is not null && (o.FreezeBackbone || options.Augmentation is not RandomResizedCropAugmentation)
            ? new ResizeCropSource(train, entryTransform) : train;
        IImageSource? validationImages = entryTransform is not null && validation is not null ? new ResizeCropSource(validation, entryTransform) : validation;
        // Statistics from an evenly spaced sample of the rows: each sampled image is decoded once and not kept.
        if (options.FixedNormalization is null && !options.Resume)
            options = options with
            {
                FixedNormalization = Normalization.Compute(trainImages, new ImagePipeline(channels, size, size, null, o.FreezeBackbone ? Augmentation.None : options.Augmentation),
                    options.Normalization, NormalizationSample),
            };

        // Not disposed: LastTraining hands the trained network to the caller.
        var model = pretrained?.Model ?? new Trainer.Models.ResNetModel(spec, seed: options.Seed);
        if (o.PretrainedWeights is not null)
            ResNetWeights.LoadBackbone(model, o.PretrainedWeights);
        var progress = new ForwardProgress(ch, TensorBoardWriter.Tee(o.MetricsCallback, o.TensorBoardFolder is null ? null : new TensorBoardWriter(o.TensorBoardFolder)));
        Normalization normalization;
        if (o.FreezeBackbone)
        {
            // Head only: cache the frozen trunk's features once, then train the classifier on them.
            normalization = options.FixedNormalization ?? Normalization.Compute(trainImages, new ImagePipeline(channels, size, size, null, Augmentation.None), options.Normalization, NormalizationSample);
            var history = HeadTrainer.Train(model, trainImages, new ImagePipeline(channels, size, size, normalization, Augmentation.None),
                new HeadTrainingOptions
                {
                    Length = options.Length, BatchSize = Math.Min(options.BatchSize, 64), Seed = options.Seed, FeatureCacheFolder = o.WorkspaceFolder,
                    LearningRate = o.LearningRate ?? 0.05, Momentum = o.Momentum ?? 0.9, WeightDecay = o.WeightDecay ?? 1e-4, // the head's own defaults unless set
                },
                progress, o.CancellationToken);
            LastTraining = new TrainingResult(model, new ModelCard(spec, classes, size, size, normalization, Augmentation.None), history,
                history.Count, o.CancellationToken.IsCancellationRequested ? StopReason.Cancelled : StopReason.Completed, null, TimeSpan.FromSeconds(history.Sum(h => h.Seconds)));
        }
        else
        {
            var result = ResNetTrainer.Train(model, trainImages, validationImages, options, progress, o.CancellationToken);
            LastTraining = result;
            normalization = result.Card.Normalization;
        }
        foreach (var source in new[] { train, validation })
            if (source?.Undecodable is { Count: > 0 } bad)
                Warn($"Skipped {bad.Count} image(s) that could not be decoded while training (each replaced by another image of its class): " +
                     $"{string.Join("; ", bad.Take(10))}{(bad.Count > 10 ? "; ..." : "")}");
        ch.Info(MessageSensitivity.None, "{0}", $"ResNet: training stopped ({LastTraining.Stop}) after {LastTraining.History.Count} epoch(s) in {LastTraining.Elapsed.TotalSeconds:F0} s");

        byte[] onnx = OnnxExporter.Export(model, new OnnxExportOptions
        {
            ClassNames = classes,
            ImageHeight = size,
            ImageWidth = size,
            Normalization = normalization.ToInputNormalization(),
            Preprocessing = geometry,
        });
        return ApplyResNetEstimator.CreateTransformer(_ml, onnx, "trained model", input, o.ImageColumnName, o.ImageFolder,
            o.ScoreColumnName, o.PredictedLabelColumnName, o.ScoringBatchSize, classes, o.ScoringThreads);
    }

    // Sends each event to mlContext.Log (through an ML.NET channel) and to the user's callback.
    private sealed class ForwardProgress(IChannel channel, IProgress<TrainingProgress>? user) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress p)
        {
            switch (p.Kind)
            {
                case ProgressKind.Epoch:
                    channel.Info(MessageSensitivity.None, "{0}", $"ResNet epoch {p.Epoch}/{p.Epochs}: loss {p.Loss:F4}, train error {p.TrainError:P2}" +
                        (p.ValidationError is double v ? $", validation error {v:P2}" : "") + $", lr {p.LearningRate:G3}, {p.ImagesPerSecond:F0} images/s");
                    break;
                case ProgressKind.Message when p.Message is not null:
                    channel.Info(MessageSensitivity.None, "{0}", "ResNet: " + p.Message);
                    break;
                case ProgressKind.Warning when p.Message is not null:
                    channel.Warning(MessageSensitivity.None, "{0}", "ResNet: " + p.Message);
                    break;
            }
            user?.Report(p);
        }
    }
}

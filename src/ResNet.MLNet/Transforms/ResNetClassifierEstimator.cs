using Microsoft.ML;
using Microsoft.ML.Runtime;
using ResNet.Trainer.Data;
using ResNet.Trainer.Models;
using ResNet.Trainer.Onnx;
using ResNet.Trainer.Training;

namespace ResNet.MLNet.Transforms;

/// <summary>Pretrained networks a ResNet classifier can start from.</summary>
public enum ResNetPretrained
{
    /// <summary>No pretrained network: build <c>Options.Architecture</c> with He initialisation.</summary>
    None,
    /// <summary>The ImageNet-trained ResNet18 trunk of NuGet <c>Microsoft.ML.DnnImageFeaturizer.ResNet18</c>.</summary>
    ResNet18,
}

/// <summary>
/// Trains a ResNet on an IDataView's image and key-label columns with the TorchSharp engine, exports it to ONNX,
/// and returns a <see cref="ResNetScoringTransformer"/> that scores with ONNX Runtime.
/// </summary>
public sealed class ResNetClassifierEstimator : IEstimator<ResNetScoringTransformer>
{
    /// <summary>Options of <see cref="ResNetClassifierEstimator"/>. Every field has a default that works.</summary>
    public sealed class Options
    {
        /// <summary>Architecture name (<c>resnet20</c>, <c>resnet56</c>, <c>resnet18</c>, <c>plain-20</c>, ...; see <see cref="ResNetNames"/>). Default <c>resnet20</c>.</summary>
        public string Architecture { get; set; } = "resnet20";

        /// <summary>The image column: an image (LoadImages), encoded bytes (LoadRawImageBytes) or a path. Default <c>Image</c>.</summary>
        public string ImageColumnName { get; set; } = "Image";

        /// <summary>Folder that relative paths in a path-typed image column are resolved against. Default: none.</summary>
        public string? ImageFolder { get; set; }

        /// <summary>The label column, a key type (from MapValueToKey). Default <c>Label</c>.</summary>
        public string LabelColumnName { get; set; } = "Label";

        /// <summary>Output column with one probability per class. Default <c>Score</c>.</summary>
        public string ScoreColumnName { get; set; } = "Score";

        /// <summary>Output column with the predicted class as a key. Default <c>PredictedLabel</c>.</summary>
        public string PredictedLabelColumnName { get; set; } = "PredictedLabel";

        /// <summary>Input size in pixels (images are resized to it). Default: 32 for CIFAR-family models, 224 for ImageNet models.</summary>
        public int? ImageSize { get; set; }

        /// <summary>Input channels: 1 (grayscale) or 3 (RGB). Default 3.</summary>
        public int Channels { get; set; } = 3;

        /// <summary>Training recipe: <c>fast-cpu</c> (default), <c>paper-cifar</c> or <c>paper-imagenet</c>; the fields below override it.</summary>
        public string Recipe { get; set; } = "fast-cpu";

        /// <summary>Passes over the training data. Default: the recipe's.</summary>
        public int? Epochs { get; set; }

        /// <summary>Images per SGD step. Default: the recipe's (128).</summary>
        public int? BatchSize { get; set; }

        /// <summary>Peak learning rate. Default: the recipe's.</summary>
        public double? LearningRate { get; set; }

        /// <summary>Learning-rate schedule. Default: the recipe's.</summary>
        public LearningRateSchedule? Schedule { get; set; }

        /// <summary>Training augmentation (<see cref="Augmentation.Cifar"/>, <see cref="Augmentation.ImageNet"/>, <see cref="Augmentation.None"/>). Default: the recipe's.</summary>
        public Augmentation? Augmentation { get; set; }

        /// <summary>Validation data, scored after every epoch for best-epoch selection and early stopping. Default: none.</summary>
        public IDataView? ValidationSet { get; set; }

        /// <summary>Fraction of the training rows held out for validation when <see cref="ValidationSet"/> is null (stratified, seeded). Default 0.</summary>
        public double ValidationFraction { get; set; }

        /// <summary>Stop when validation error has not improved for this many epochs. Default: never.</summary>
        public int? EarlyStoppingPatience { get; set; }

        /// <summary>Weights to start from (<c>.pth</c>, <c>.safetensors</c>, <c>.dat</c>) for the same architecture; the classifier is
        /// re-initialised when its class count differs. Default: random He initialisation.</summary>
        public string? PretrainedWeights { get; set; }

        /// <summary>
        /// Start from a pretrained network instead of <see cref="Architecture"/>: <see cref="ResNetPretrained.ResNet18"/> is the
        /// ImageNet-trained trunk of NuGet <c>Microsoft.ML.DnnImageFeaturizer.ResNet18</c> (3 channels, 224x224). Default: none.
        /// </summary>
        public ResNetPretrained PretrainedModel { get; set; }

        /// <summary>Folder with the DnnImageFeaturizer models; default <c>DnnImageModels</c> in the app's folder, where the package puts them.</summary>
        public string? PretrainedModelsDirectory { get; set; }

        /// <summary>
        /// Train only the final fully connected layer: the trunk's pooled features are computed once per image and cached,
        /// then the classifier is trained on them (fast; no augmentation). Default false: every layer is trained (fine-tuning).
        /// </summary>
        public bool FreezeBackbone { get; set; }

        /// <summary>Device: <c>cpu</c>, <c>cuda</c>, <c>cuda:N</c> or <c>auto</c>. Default <c>cpu</c>.</summary>
        public string Device { get; set; } = "cpu";

        /// <summary>Seed for initialisation, shuffling, augmentation and the validation split. Default 0.</summary>
        public int Seed { get; set; }

        /// <summary>Threads for training; default: TorchSharp's choice.</summary>
        public int? Threads { get; set; }

        /// <summary>Receives progress (iteration, epoch, loss, errors, learning rate, images/s, ETA). Default: none.</summary>
        public IProgress<TrainingProgress>? MetricsCallback { get; set; }

        /// <summary>Stops training after the current iteration (a checkpoint is written when <see cref="CheckpointFolder"/> is set). Default: none.</summary>
        public CancellationToken CancellationToken { get; set; }

        /// <summary>Folder for checkpoints (written atomically every epoch); training resumes from it when it holds one. Default: none.</summary>
        public string? CheckpointFolder { get; set; }

        /// <summary>Skip rows whose image cannot be decoded (with a warning) instead of failing. Default false.</summary>
        public bool SkipUndecodableImages { get; set; }

        /// <summary>Images per ONNX Runtime call when scoring. Default 32.</summary>
        public int ScoringBatchSize { get; set; } = 32;

        /// <summary>ONNX Runtime intra-op threads when scoring; 0 leaves ONNX Runtime's default.</summary>
        public int ScoringThreads { get; set; }
    }

    private readonly IHostEnvironment _env;
    private readonly MLContext _ml;
    private readonly Options _options;

    /// <summary>Creates the estimator; <c>mlContext.Transforms.ResNetClassifier(...)</c> is the usual route.</summary>
    public ResNetClassifierEstimator(MLContext mlContext, Options options)
        : this((IHostEnvironment)(mlContext ?? throw new ArgumentNullException(nameof(mlContext))), options)
    {
    }

    internal ResNetClassifierEstimator(IHostEnvironment env, Options options)
    {
        _env = env.RegisterResNet();
        // ML.NET's own transforms used inside (decode, resize, pixels, ONNX) are built in a private context.
        _ml = new MLContext(options?.Seed ?? 0).RegisterResNet();
        _options = options ?? throw new ArgumentNullException(nameof(options));
        ResNetSpec.Parse(options.Architecture); // fail on a bad name now, not after loading the data
        if (options.Channels is not (1 or 3))
            throw new ArgumentOutOfRangeException(nameof(options), options.Channels, "Options.Channels must be 1 (grayscale) or 3 (RGB).");
    }

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
        using var ch = _env.Start("ResNetClassifier");
        var kind = ImagePreprocessing.Classify(input.Schema, o.ImageColumnName);
        string[] classes = TrainingDataReader.ClassNames(input.Schema, o.LabelColumnName);
        if (classes.Length < 2)
            throw new InvalidDataException($"Label column '{o.LabelColumnName}' has {classes.Length} class; a classifier needs at least 2.");

        PretrainedNetwork? pretrained = o.PretrainedModel == ResNetPretrained.ResNet18
            ? PretrainedResNet18.Load(o.PretrainedModelsDirectory ?? ResNetFeaturizerEstimator.DefaultDnnModelsDirectory, classes.Length, o.Seed)
            : null;
        var spec = pretrained?.Model.Spec ?? ResNetSpec.Parse(o.Architecture) with { InputChannels = o.Channels, NumClasses = classes.Length };
        int size = pretrained?.Normalization.Height ?? o.ImageSize ?? spec.DefaultImageSize;
        int channels = spec.InputChannels;
        var readInfo = new ResNetModelInfo(classes, channels, size, size, 1f, OnnxExporter.Input, OnnxExporter.ProbabilitiesOutput, null);
        void Warn(string m) { ch.Warning(MessageSensitivity.None, "{0}", m); o.MetricsCallback?.Report(Message(m)); }

        var train = TrainingDataReader.Read(_ml, input, kind, o.ImageColumnName, o.ImageFolder, o.LabelColumnName, readInfo, o.SkipUndecodableImages, Warn);
        ch.Info(MessageSensitivity.None, "{0}", $"ResNet: {train.Count} training images, {classes.Length} classes, {spec.Name} at {channels}x{size}x{size}");
        InMemoryImages? validation = null;
        if (o.ValidationSet is not null)
        {
            var vKind = ImagePreprocessing.Classify(o.ValidationSet.Schema, o.ImageColumnName);
            string[] vClasses = TrainingDataReader.ClassNames(o.ValidationSet.Schema, o.LabelColumnName);
            if (!vClasses.SequenceEqual(classes))
                throw new InvalidDataException(
                    $"The validation set's label keys ({string.Join(", ", vClasses.Take(10))}) differ from the training set's ({string.Join(", ", classes.Take(10))}). " +
                    "Fit one MapValueToKey on the training data and apply the same transformer to both.");
            validation = TrainingDataReader.Read(_ml, o.ValidationSet, vKind, o.ImageColumnName, o.ImageFolder, o.LabelColumnName, readInfo, o.SkipUndecodableImages, Warn);
        }

        var recipe = Recipes.Get(o.Recipe, spec);
        var options = recipe with
        {
            Epochs = o.Epochs ?? recipe.Epochs,
            BatchSize = o.BatchSize ?? recipe.BatchSize,
            LearningRate = o.LearningRate ?? recipe.LearningRate,
            Schedule = o.Schedule ?? recipe.Schedule,
            Augmentation = o.Augmentation ?? recipe.Augmentation,
            ImageSize = size,
            ValidationFraction = validation is null ? o.ValidationFraction : 0,
            EarlyStoppingPatience = o.EarlyStoppingPatience,
            Seed = o.Seed,
            Device = o.Device,
            Threads = o.Threads,
            CheckpointDirectory = o.CheckpointFolder,
            Resume = o.CheckpointFolder is not null && Directory.Exists(o.CheckpointFolder) && Directory.EnumerateFiles(o.CheckpointFolder).Any(),
        };

        // Not disposed: LastTraining hands the trained network to the caller.
        var model = pretrained?.Model ?? new Trainer.Models.ResNetModel(spec, seed: o.Seed);
        if (o.PretrainedWeights is not null)
            ResNetWeights.LoadBackbone(model, o.PretrainedWeights);
        var progress = new ForwardProgress(ch, o.MetricsCallback);
        Normalization normalization;
        if (o.FreezeBackbone)
        {
            // Head only: cache the frozen trunk's features once, then train the classifier on them.
            normalization = pretrained?.Normalization ?? Normalization.Compute(train, new ImagePipeline(channels, size, size, null, Augmentation.None), options.Normalization);
            var history = HeadTrainer.Train(model, train, new ImagePipeline(channels, size, size, normalization, Augmentation.None),
                new HeadTrainingOptions { Epochs = options.Epochs, BatchSize = Math.Min(options.BatchSize, 64), Seed = o.Seed, LearningRate = o.LearningRate ?? 0.05 },
                progress, o.CancellationToken);
            LastTraining = new TrainingResult(model, new ModelCard(spec, classes, size, size, normalization, Augmentation.None), history,
                history.Count, o.CancellationToken.IsCancellationRequested ? StopReason.Cancelled : StopReason.Completed, null, TimeSpan.FromSeconds(history.Sum(h => h.Seconds)));
        }
        else
        {
            var result = ResNet.Trainer.Training.Trainer.Train(model, train, validation, options with { FixedNormalization = pretrained?.Normalization }, progress, o.CancellationToken);
            LastTraining = result;
            normalization = result.Card.Normalization;
        }
        ch.Info(MessageSensitivity.None, "{0}", $"ResNet: training stopped ({LastTraining.Stop}) after {LastTraining.History.Count} epoch(s) in {LastTraining.Elapsed.TotalSeconds:F0} s");

        byte[] onnx = OnnxExporter.Export(model, new OnnxExportOptions
        {
            ClassNames = classes,
            ImageHeight = size,
            ImageWidth = size,
            Normalization = normalization.ToInputNormalization(),
        });
        return ApplyResNetEstimator.CreateTransformer(_ml, onnx, "trained model", input, o.ImageColumnName, o.ImageFolder,
            o.ScoreColumnName, o.PredictedLabelColumnName, o.ScoringBatchSize, classes, o.ScoringThreads);
    }

    private static TrainingProgress Message(string m) =>
        new(ProgressKind.Message, 0, 0, 0, 0, 0, 0, null, null, 0, 0, TimeSpan.Zero, m);

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
            }
            user?.Report(p);
        }
    }
}

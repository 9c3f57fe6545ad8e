using System.IO.Compression;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Onnx;
using ResNet.MLNet.Transforms;

namespace ResNet.MLNet;

/// <summary>
/// Loads a saved model with the batched ONNX Runtime scorer in place of ML.NET's row-by-row <c>ApplyOnnxModel</c>:
/// <c>mlContext.Model.LoadWithResNetScoring("model.zip", out schema, threads: 2)</c>. The zip is the one
/// <c>mlContext.Model.Save</c> wrote; plain <c>mlContext.Model.Load</c> keeps working on it.
/// </summary>
public static class ResNetModelLoading
{
    /// <summary>
    /// Loads <paramref name="filePath"/> like <c>Model.Load</c>, then puts back the batched scorer of every ResNet classifier
    /// in it (with <paramref name="threads"/> ONNX Runtime threads, on the device the context's GpuDeviceId / FallbackToCpu
    /// choose); every other transformer in the chain stays as loaded.
    /// </summary>
    /// <param name="catalog">The model operations catalog (<c>mlContext.Model</c>).</param>
    /// <param name="filePath">A zip written by <c>mlContext.Model.Save</c> from a pipeline with a ResNet classifier.</param>
    /// <param name="inputSchema">The schema the model expects, as <c>Model.Load</c> gives it.</param>
    /// <param name="threads">ONNX Runtime intra-op threads; 0 leaves ONNX Runtime's default (one per core).</param>
    /// <param name="batchSize">Images per ONNX Runtime call; 0 keeps the batch size the model was saved with.</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The zip holds no ResNet classifier (load it with <c>Model.Load</c>).</exception>
    /// <exception cref="ExecutionProviderUnavailableException">The context's GpuDeviceId names a CUDA device that cannot be used and its FallbackToCpu is false.</exception>
    public static ITransformer LoadWithResNetScoring(this ModelOperationsCatalog catalog, string filePath, out DataViewSchema inputSchema,
        int threads = 0, int batchSize = 0)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(filePath);
        if (threads < 0) throw new ArgumentOutOfRangeException(nameof(threads), threads, "threads must be 0 (ONNX Runtime's default) or a positive count.");
        if (batchSize < 0) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "batchSize must be 0 (as saved) or a positive count.");
        if (!File.Exists(filePath))
            throw new FileNotFoundException($"Model file '{filePath}' does not exist. Save one with mlContext.Model.Save.", filePath);
        // The rebuilt scorers assemble their inner chains in the caller's context, and score on the device it asks for.
        var env = MLEnvironment.Of(ResNetScoringCatalog.EnvironmentOf(catalog));
        env.EnsureDeviceUsable();
        var loaded = catalog.Load(filePath, out inputSchema);
        var graphs = new Queue<(byte[] Onnx, SavedScoring Saved)?>(SavedOnnxGraphs(filePath).Select(OnnxGraphAdapter.Restore));
        if (!graphs.Any(g => g is not null))
            throw new InvalidDataException($"'{filePath}' holds no ResNet classifier saved by this library. Load it with mlContext.Model.Load.");
        return Rebuild(env, loaded, inputSchema, graphs, filePath, threads, batchSize);
    }

    // ML.NET saves transformers depth first, in chain order, so the zip's ONNX entries come in the order a depth-first
    // walk meets the OnnxTransformers. A saved ResNet scorer is a chain [preprocessing, [ApplyOnnxModel, key mapping, ...]].
    private static ITransformer Rebuild(MLEnvironment env, ITransformer transformer, DataViewSchema schema,
        Queue<(byte[] Onnx, SavedScoring Saved)?> graphs, string source, int threads, int batchSize)
    {
        if (transformer is OnnxTransformer)
        {
            if (graphs.Count > 0) graphs.Dequeue(); // a user's own ApplyOnnxModel: kept as loaded
            return transformer;
        }
        if (transformer is not TransformerChain<ITransformer> chain) return transformer;
        if (chain.LastOrDefault() is TransformerChain<ITransformer> tail && tail.Any(t => t is OnnxTransformer))
        {
            // A scorer saved by this library (classifier or featurizer): only a classifier's graph carries a saved record.
            if (graphs.Count == 0 || graphs.Dequeue() is not { } graph) return transformer;
            var s = graph.Saved;
            return ApplyResNetEstimator.CreateTransformer(env, graph.Onnx, $"ResNet classifier in '{source}'", new EmptyDataView(schema),
                s.ImageColumn, s.ImageFolder, s.ScoreColumn, s.PredictedLabelColumn, batchSize > 0 ? batchSize : s.BatchSize, classNames: null, threads);
        }
        var rebuilt = new List<ITransformer>();
        foreach (var t in chain)
        {
            var r = Rebuild(env, t, schema, graphs, source, threads, batchSize);
            rebuilt.Add(r);
            schema = r.GetOutputSchema(schema);
        }
        return new TransformerChain<ITransformer>([.. rebuilt]);
    }

    // The bytes of every ONNX model in the zip, in the order ML.NET wrote them (its binary streams are a length, then the bytes).
    private static IEnumerable<byte[]> SavedOnnxGraphs(string path)
    {
        using var zip = ZipFile.OpenRead(path);
        var graphs = new List<byte[]>();
        foreach (var entry in zip.Entries.Where(e => e.Name == "OnnxModel"))
        {
            using var stream = entry.Open();
            var bytes = new byte[entry.Length];
            stream.ReadExactly(bytes);
            // The length prefix is a 32-bit count in the ML.NET versions this targets; accept a 64-bit one too.
            int prefix = bytes.Length >= 4 && BitConverter.ToInt32(bytes, 0) == bytes.Length - 4 ? 4
                : bytes.Length >= 8 && BitConverter.ToInt64(bytes, 0) == bytes.Length - 8 ? 8
                : throw new InvalidDataException($"'{path}': the ONNX model stored at '{entry.FullName}' is not in ML.NET's format. Save the model again with mlContext.Model.Save.");
            graphs.Add(bytes[prefix..]);
        }
        return graphs;
    }

    /// <summary>A view with a schema and no rows: what fitting the image preprocessing needs when no data is at hand.</summary>
    private sealed class EmptyDataView(DataViewSchema schema) : IDataView
    {
        public DataViewSchema Schema { get; } = schema;
        public bool CanShuffle => false;
        public long? GetRowCount() => 0;
        public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null) => new Cursor(Schema);
        public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) => [new Cursor(Schema)];

        private sealed class Cursor(DataViewSchema schema) : DataViewRowCursor
        {
            public override DataViewSchema Schema { get; } = schema;
            public override long Position => -1;
            public override long Batch => 0;
            public override bool MoveNext() => false;
            public override bool IsColumnActive(DataViewSchema.Column column) => false;
            public override ValueGetter<DataViewRowId> GetIdGetter() => throw new InvalidOperationException("An empty view has no rows.");
            public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column) => throw new InvalidOperationException("An empty view has no rows.");
        }
    }
}

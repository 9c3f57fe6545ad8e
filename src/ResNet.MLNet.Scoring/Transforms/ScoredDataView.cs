using Microsoft.ML;
using Microsoft.ML.Data;

namespace ResNet.MLNet.Transforms;

/// <summary>
/// The source view plus <c>Score</c> and <c>PredictedLabel</c> (or a features vector), computed lazily in batches inside the cursor.
/// A look-ahead cursor reads only the pixel column a batch at a time; the main cursor serves every other column
/// for the current row, so rows stay in order and memory is bounded by one batch.
/// </summary>
internal sealed class ScoredDataView : IDataView
{
    private readonly IDataView _source;
    private readonly BatchScorer _scorer;
    private readonly int _batchSize;
    private readonly int _classes; // values per row the scorer returns: classes, or features
    private readonly int _pixelColumn;
    private readonly int _scoreIndex;
    private readonly int _labelIndex;

    public ScoredDataView(IDataView source, BatchScorer scorer, IReadOnlyList<string> classNames, string scoreColumn, string predictedLabelColumn, int batchSize)
        : this(source, scorer, classNames.Count, batchSize, OutputSchema(source.Schema, classNames, scoreColumn, predictedLabelColumn), features: false)
    {
    }

    /// <summary>A view that adds one features column of <paramref name="featureCount"/> values per row.</summary>
    public static ScoredDataView WithFeatures(IDataView source, BatchScorer scorer, int featureCount, string featuresColumn, int batchSize) =>
        new(source, scorer, featureCount, batchSize, FeaturesSchema(source.Schema, featuresColumn, featureCount), features: true);

    private ScoredDataView(IDataView source, BatchScorer scorer, int width, int batchSize, DataViewSchema schema, bool features)
    {
        _source = source;
        _scorer = scorer;
        _batchSize = Math.Max(1, batchSize);
        _classes = width;
        _pixelColumn = source.Schema[ImagePreprocessing.PixelsColumn].Index;
        Schema = schema;
        _scoreIndex = source.Schema.Count;
        _labelIndex = features ? -1 : source.Schema.Count + 1;
    }

    /// <summary>The input schema plus a features vector.</summary>
    internal static DataViewSchema FeaturesSchema(DataViewSchema input, string featuresColumn, int featureCount)
    {
        var builder = new DataViewSchema.Builder();
        builder.AddColumns(input);
        builder.AddColumn(featuresColumn, new VectorDataViewType(NumberDataViewType.Single, featureCount));
        return builder.ToSchema();
    }

    /// <summary>The input schema plus the score vector (with slot names) and the predicted key (with class names).</summary>
    internal static DataViewSchema OutputSchema(DataViewSchema input, IReadOnlyList<string> classNames, string scoreColumn, string predictedLabelColumn)
    {
        var names = new VBuffer<ReadOnlyMemory<char>>(classNames.Count, classNames.Select(n => n.AsMemory()).ToArray());
        var builder = new DataViewSchema.Builder();
        builder.AddColumns(input);
        var scoreAnnotations = new DataViewSchema.Annotations.Builder();
        var namesType = new VectorDataViewType(TextDataViewType.Instance, classNames.Count);
        scoreAnnotations.Add("SlotNames", namesType, (ref VBuffer<ReadOnlyMemory<char>> v) => names.CopyTo(ref v));
        builder.AddColumn(scoreColumn, new VectorDataViewType(NumberDataViewType.Single, classNames.Count), scoreAnnotations.ToAnnotations());
        var keyAnnotations = new DataViewSchema.Annotations.Builder();
        keyAnnotations.Add("KeyValues", namesType, (ref VBuffer<ReadOnlyMemory<char>> v) => names.CopyTo(ref v));
        builder.AddColumn(predictedLabelColumn, new KeyDataViewType(typeof(uint), classNames.Count), keyAnnotations.ToAnnotations());
        return builder.ToSchema();
    }

    public bool CanShuffle => false;

    public DataViewSchema Schema { get; }

    public long? GetRowCount() => _source.GetRowCount();

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
    {
        var needed = columnsNeeded.Select(c => c.Index).ToHashSet();
        bool score = needed.Contains(_scoreIndex) || needed.Contains(_labelIndex);
        var sourceCols = _source.Schema.Where(c => needed.Contains(c.Index)).ToList();
        var main = _source.GetRowCursor(sourceCols);
        var ahead = score ? _source.GetRowCursor([_source.Schema[_pixelColumn]]) : null;
        return new Cursor(this, main, ahead, needed);
    }

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) =>
        [GetRowCursor(columnsNeeded, rand)];

    private sealed class Cursor : DataViewRowCursor
    {
        private readonly ScoredDataView _parent;
        private readonly DataViewRowCursor _main;
        private readonly HashSet<int> _active;
        private readonly BatchProducer? _producer;
        private float[] _probabilities = [];
        private int _batchCount;
        private int _inBatch = -1;

        public Cursor(ScoredDataView parent, DataViewRowCursor main, DataViewRowCursor? ahead, HashSet<int> active)
        {
            _parent = parent;
            _main = main;
            _active = active;
            _producer = ahead is null ? null : new BatchProducer(parent, ahead);
        }

        public override DataViewSchema Schema => _parent.Schema;
        public override long Position => _main.Position;
        public override long Batch => _main.Batch;

        public override bool MoveNext()
        {
            if (!_main.MoveNext()) return false;
            if (_producer is null) return true;
            if (++_inBatch >= _batchCount)
            {
                (_probabilities, _batchCount) = _producer.Next();
                _inBatch = 0;
            }
            if (_inBatch >= _batchCount)
                throw new InvalidOperationException("The scoring cursor fell out of step with its source; the upstream view is not deterministic.");
            return true;
        }

        public override bool IsColumnActive(DataViewSchema.Column column) =>
            column.Index >= _parent._scoreIndex ? _active.Contains(column.Index) : _main.IsColumnActive(_parent._source.Schema[column.Index]);

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            int classes = _parent._classes;
            if (column.Index == _parent._scoreIndex)
            {
                ValueGetter<VBuffer<float>> g = (ref VBuffer<float> value) =>
                {
                    var editor = VBufferEditor.Create(ref value, classes);
                    _probabilities.AsSpan(_inBatch * classes, classes).CopyTo(editor.Values);
                    value = editor.Commit();
                };
                return (ValueGetter<TValue>)(Delegate)g;
            }
            if (column.Index == _parent._labelIndex && _parent._labelIndex >= 0)
            {
                ValueGetter<uint> g = (ref uint value) =>
                {
                    var row = _probabilities.AsSpan(_inBatch * classes, classes);
                    int best = 0;
                    for (int k = 1; k < row.Length; k++) if (row[k] > row[best]) best = k;
                    value = (uint)best + 1; // keys are 1-based; 0 is "missing"
                };
                return (ValueGetter<TValue>)(Delegate)g;
            }
            return _main.GetGetter<TValue>(_parent._source.Schema[column.Index]);
        }

        public override ValueGetter<DataViewRowId> GetIdGetter() => _main.GetIdGetter();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _producer?.Dispose();
                _main.Dispose();
            }
            base.Dispose(disposing);
        }
    }

    /// <summary>
    /// Reads and scores the next batch on a worker thread while the consumer walks the current one, so decoding,
    /// ONNX Runtime and the downstream pipeline overlap. At most two batches are held: memory stays bounded.
    /// </summary>
    private sealed class BatchProducer : IDisposable
    {
        private readonly System.Collections.Concurrent.BlockingCollection<(float[] Scores, int Count, Exception? Error)> _queue = new(boundedCapacity: 1);
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _worker;

        public BatchProducer(ScoredDataView parent, DataViewRowCursor ahead)
        {
            _worker = Task.Run(() => Produce(parent, ahead));
        }

        private void Produce(ScoredDataView parent, DataViewRowCursor ahead)
        {
            try
            {
                var getPixels = ahead.GetGetter<VBuffer<float>>(parent._source.Schema[parent._pixelColumn]);
                int pixelCount = ((VectorDataViewType)parent._source.Schema[parent._pixelColumn].Type).Size;
                var pixels = new float[pixelCount * parent._batchSize];
                VBuffer<float> row = default;
                while (!_stop.IsCancellationRequested)
                {
                    int n = 0;
                    while (n < parent._batchSize && ahead.MoveNext())
                    {
                        getPixels(ref row);
                        if (row.Length != pixelCount)
                            throw new InvalidOperationException($"Expected {pixelCount} pixel values per image, got {row.Length}.");
                        row.GetValues().CopyTo(pixels.AsSpan(n * pixelCount, pixelCount));
                        n++;
                    }
                    if (n == 0) break;
                    _queue.Add((parent._scorer(pixels.AsMemory(0, n * pixelCount), n), n, null), _stop.Token);
                }
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
            }
            catch (Exception ex)
            {
                // A decode failure inside ML.NET's parallel cursor names no file: find the row it came from.
                if (BadImageRows.Find(parent._source, null) is string culprit)
                    ex = new InvalidDataException($"The image in {culprit}. Fix or remove that file, or filter the row out before scoring.", ex);
                try { _queue.Add(([], 0, ex), _stop.Token); } catch (OperationCanceledException) { } // the consumer has gone
            }
            finally
            {
                ahead.Dispose();
                _queue.CompleteAdding();
            }
        }

        /// <summary>The next scored batch; an empty one at the end of the data.</summary>
        public (float[] Scores, int Count) Next()
        {
            if (!_queue.TryTake(out var batch, Timeout.Infinite)) return ([], 0);
            if (batch.Error is not null)
                throw batch.Error is InvalidDataException named ? new InvalidDataException(named.Message, batch.Error)
                    : new InvalidOperationException($"Scoring a batch failed: {batch.Error.Message}", batch.Error);
            return (batch.Scores, batch.Count);
        }

        public void Dispose()
        {
            _stop.Cancel();
            while (_queue.TryTake(out _)) { } // unblock a worker waiting to add
            try { _worker.Wait(); } catch (AggregateException) { }
            _queue.Dispose();
            _stop.Dispose();
        }
    }
}

using System.Collections.Concurrent;
using System.Globalization;
using System.Text;

namespace ResNet.Serving;

/// <summary>Counters and histograms the server exposes at <c>/metrics</c> in Prometheus text format.</summary>
internal sealed class Metrics
{
    private readonly ConcurrentDictionary<(string Route, int Code), long> _requests = new();
    private readonly ConcurrentDictionary<string, long> _errors = new();
    public Histogram Latency { get; } = new("resnet_request_duration_seconds", "Time from request start to response, seconds.",
        [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]);
    public Histogram QueueTime { get; } = new("resnet_queue_seconds", "Time the oldest request of a batch waited in the scorer's queue, seconds.",
        [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1]);
    public Histogram BatchSize { get; } = new("resnet_batch_size", "Images per batch run by ONNX Runtime.", [1, 2, 4, 8, 16, 32, 64, 128]);

    public void Request(string route, int code, double seconds)
    {
        _requests.AddOrUpdate((route, code), 1, (_, v) => v + 1);
        if (code >= 400) _errors.AddOrUpdate(route, 1, (_, v) => v + 1);
        Latency.Observe(seconds);
    }

    public string Render()
    {
        var sb = new StringBuilder();
        sb.Append("# HELP resnet_requests_total HTTP requests by route and status code.\n# TYPE resnet_requests_total counter\n");
        foreach (var ((route, code), n) in _requests.OrderBy(k => k.Key.Route, StringComparer.Ordinal).ThenBy(k => k.Key.Code))
            sb.Append(CultureInfo.InvariantCulture, $"resnet_requests_total{{route=\"{route}\",code=\"{code}\"}} {n}\n");
        sb.Append("# HELP resnet_request_errors_total HTTP requests answered with a 4xx or 5xx status.\n# TYPE resnet_request_errors_total counter\n");
        foreach (var (route, n) in _errors.OrderBy(k => k.Key, StringComparer.Ordinal))
            sb.Append(CultureInfo.InvariantCulture, $"resnet_request_errors_total{{route=\"{route}\"}} {n}\n");
        Latency.Render(sb);
        QueueTime.Render(sb);
        BatchSize.Render(sb);
        return sb.ToString();
    }
}

/// <summary>A Prometheus histogram: cumulative buckets, sum and count.</summary>
internal sealed class Histogram(string name, string help, double[] bounds)
{
    private readonly long[] _counts = new long[bounds.Length + 1];
    private double _sum;
    private long _count;
    private readonly Lock _lock = new();

    public long Count { get { lock (_lock) return _count; } }

    public void Observe(double value)
    {
        int i = 0;
        while (i < bounds.Length && value > bounds[i]) i++;
        lock (_lock)
        {
            _counts[i]++;
            _sum += value;
            _count++;
        }
    }

    public void Render(StringBuilder sb)
    {
        var inv = CultureInfo.InvariantCulture;
        sb.Append(inv, $"# HELP {name} {help}\n# TYPE {name} histogram\n");
        lock (_lock)
        {
            long cumulative = 0;
            for (int i = 0; i < bounds.Length; i++)
            {
                cumulative += _counts[i];
                sb.Append(inv, $"{name}_bucket{{le=\"{bounds[i].ToString("R", inv)}\"}} {cumulative}\n");
            }
            sb.Append(inv, $"{name}_bucket{{le=\"+Inf\"}} {_count}\n{name}_sum {_sum.ToString("R", inv)}\n{name}_count {_count}\n");
        }
    }
}

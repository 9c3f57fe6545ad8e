// Load benchmark: 64 concurrent loopback clients each POST one image file at a time to /v1/models/{name}/predict,
// against the offline batched scorer decoding the same files in the same run, with and without dynamic batching.
// Bounded: a fixed number of requests per run. Usage: dotnet run -c Release -- <images folder> <requests> <model.onnx>...
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using ResNet.Serving;

var inv = CultureInfo.InvariantCulture;
string folder = args[0];
int requests = int.Parse(args[1], inv);
const int Clients = 64;
var files = ImageTensors.FindImages([folder]).Take(requests).ToArray();
var bytes = files.Select(File.ReadAllBytes).ToArray();
Console.WriteLine($"loadavg before: {File.ReadAllText("/proc/loadavg").Trim()}");
Console.WriteLine($"{Environment.ProcessorCount} cores, {Clients} clients, {requests} requests per server run, {files.Length} distinct files");
Console.WriteLine("| model | run | img/s | vs offline | p50 ms | p99 ms | failed | mean batch |");
Console.WriteLine("|---|---|---|---|---|---|---|---|");
foreach (var model in args.Skip(2))
{
    string name = TritonRepository.ModelName(model);
    double offline = Offline(model);
    Console.WriteLine($"| {name} | offline batched scorer (decode + score, batch 32) | {offline:F1} | 1.00 | | | | |");
    foreach (var (label, delay, batch) in new[] { ("server, dynamic batching (2 ms)", 2.0, 32), ("server, no dynamic batching (batch 1)", 0.0, 1) })
    {
        var (rate, p50, p99, failed, meanBatch) = await Serve(model, delay, batch);
        Console.WriteLine($"| {name} | {label} | {rate:F1} | {rate / offline:F2} | {p50:F1} | {p99:F1} | {failed} | {meanBatch:F1} |");
    }
}
Console.WriteLine($"loadavg after: {File.ReadAllText("/proc/loadavg").Trim()}");

double Offline(string model)
{
    using var scorer = new OnnxScorer(model);
    var info = scorer.Info;
    var sw = Stopwatch.StartNew();
    int done = 0;
    while (done < requests)
    {
        int n = Math.Min(32, requests - done);
        var batch = new float[n * scorer.ImageLength];
        for (int i = 0; i < n; i++)
            ImageTensors.Load(files[(done + i) % files.Length], info.Channels, info.Height, info.Width, info.Normalization.Range).CopyTo(batch, i * scorer.ImageLength);
        scorer.Score(batch, n);
        done += n;
    }
    return requests / sw.Elapsed.TotalSeconds;
}

async Task<(double Rate, double P50, double P99, int Failed, double MeanBatch)> Serve(string model, double delayMs, int maxBatch)
{
    await using var server = ResNetServer.Create(new ServerOptions
    {
        Models = [model], Port = 0, MaxBatchSize = maxBatch, MaxQueueDelay = TimeSpan.FromMilliseconds(delayMs), MaxQueuedImages = 0,
    });
    await server.StartAsync();
    using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = Clients }) { BaseAddress = new Uri(server.Address) };
    string path = $"/v1/models/{TritonRepository.ModelName(model)}/predict";
    // Warm-up: one request per client, not counted.
    await Task.WhenAll(Enumerable.Range(0, Clients).Select(i => Post(i)));
    string before = await http.GetStringAsync("/metrics");
    var latencies = new double[requests];
    int next = -1, failed = 0;
    var sw = Stopwatch.StartNew();
    await Task.WhenAll(Enumerable.Range(0, Clients).Select(async _ =>
    {
        int i;
        while ((i = Interlocked.Increment(ref next)) < requests)
        {
            long start = Stopwatch.GetTimestamp();
            if (!await Post(i)) Interlocked.Increment(ref failed);
            latencies[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        }
    }));
    double rate = requests / sw.Elapsed.TotalSeconds;
    string after = await http.GetStringAsync("/metrics");
    double batches = Metric(after, "resnet_batch_size_count") - Metric(before, "resnet_batch_size_count");
    double images = Metric(after, "resnet_batch_size_sum") - Metric(before, "resnet_batch_size_sum");
    Array.Sort(latencies);
    return (rate, latencies[requests / 2], latencies[(int)(requests * 0.99)], failed, images / batches);

    async Task<bool> Post(int i)
    {
        var content = new ByteArrayContent(bytes[i % bytes.Length]);
        content.Headers.ContentType = new MediaTypeHeaderValue("image/png");
        using var r = await http.PostAsync(path, content);
        await r.Content.ReadAsByteArrayAsync();
        return r.IsSuccessStatusCode;
    }
}

static double Metric(string text, string name) =>
    double.Parse(text.Split('\n').First(l => l.StartsWith(name + " ", StringComparison.Ordinal)).Split(' ')[1], CultureInfo.InvariantCulture);

using System.CommandLine;
using System.Globalization;
using ResNet.Serving;

namespace ResNet.Cli.Commands;

/// <summary>
/// <c>resnet serve --model m.onnx</c>: the HTTP inference server. Touches no TorchSharp type, so the process never
/// loads libtorch (a test checks its mapped libraries).
/// </summary>
internal static class ServeCommand
{
    public static Command Create(TextWriter output)
    {
        var models = new Option<string[]>("--model", "-m") { Description = "ONNX model to serve (repeat for several); served under its file name without extension.", Required = true, AllowMultipleArgumentsPerToken = false };
        var host = new Option<string>("--host") { Description = "Address to listen on (0.0.0.0 for every interface).", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port", "-p") { Description = "TCP port (0 picks a free one and prints it).", DefaultValueFactory = _ => 8080 };
        var maxBatch = new Option<int>("--max-batch") { Description = "Largest batch the dynamic batcher forms.", DefaultValueFactory = _ => 32 };
        var delay = new Option<double>("--max-queue-delay-ms") { Description = "How long a batch waits for more requests, in ms (0: batch only what is already waiting).", DefaultValueFactory = _ => 2 };
        var queue = new Option<int>("--max-queue") { Description = "Most images waiting per model before requests get 503 (0: unbounded).", DefaultValueFactory = _ => 256 };
        var maxBytes = new Option<long>("--max-request-bytes") { Description = "Largest request body (413 above it).", DefaultValueFactory = _ => 16L << 20 };
        var maxSide = new Option<int>("--max-image-side") { Description = "Largest image side in pixels (400 above it).", DefaultValueFactory = _ => 8192 };
        var threads = new Option<int>("--threads") { Description = "ONNX Runtime intra-op threads (0 = one per core).", DefaultValueFactory = _ => 0 };
        var triton = new Option<string?>("--write-triton") { Description = "Write a Triton model repository for the models to this folder and exit." };
        var cmd = new Command("serve", "Serve ONNX models over HTTP: KServe v2 / Triton-compatible REST, POST /v1/models/{name}/predict for image files, a page at /, /metrics.")
        {
            models, host, port, maxBatch, delay, queue, maxBytes, maxSide, threads, triton,
        };
        cmd.SetAction(async (parse, cancel) =>
        {
            var error = parse.InvocationConfiguration.Error;
            try
            {
                var files = parse.GetValue(models)!;
                if (parse.GetValue(triton) is { } repo)
                {
                    foreach (var f in files)
                        output.WriteLine($"wrote {TritonRepository.Write(repo, f, parse.GetValue(maxBatch))}");
                    return 0;
                }
                await using var server = ResNetServer.Create(new ServerOptions
                {
                    Models = files,
                    Host = parse.GetValue(host)!,
                    Port = parse.GetValue(port),
                    MaxBatchSize = parse.GetValue(maxBatch),
                    MaxQueueDelay = TimeSpan.FromMilliseconds(parse.GetValue(delay)),
                    MaxQueuedImages = parse.GetValue(queue),
                    MaxRequestBytes = parse.GetValue(maxBytes),
                    MaxImageSide = parse.GetValue(maxSide),
                    Threads = parse.GetValue(threads),
                }, output.WriteLine);
                await server.StartAsync(cancel);
                output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"listening on {server.Address}"));
                output.Flush();
                // Returns on SIGTERM or Ctrl+C once in-flight requests have finished.
                await server.WaitForShutdownAsync();
                return 0;
            }
            catch (Exception ex) when (ex is ArgumentException or IOException or InvalidOperationException)
            {
                error.WriteLine(ex.Message);
                return 2;
            }
        });
        return cmd;
    }
}

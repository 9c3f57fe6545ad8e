using System.Diagnostics;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using ResNet.Scoring;

namespace ResNet.Serving;

/// <summary>A model the server scores, under its name.</summary>
internal sealed class ServedModel(string name, OnnxScorer scorer)
{
    public string Name { get; } = name;
    public OnnxScorer Scorer { get; } = scorer;
    public IReadOnlyList<ModelOutput> Outputs { get; } = ModelOutputs.Of(scorer);
}

/// <summary>A request the server refuses, with the HTTP status and a message naming the problem and the fix.</summary>
internal sealed class RequestException(int status, string message) : Exception(message)
{
    public int Status { get; } = status;
}

/// <summary>
/// The <c>resnet serve</c> HTTP server: the Open Inference Protocol (KServe v2) REST endpoints with Triton's
/// binary-data and classification extensions, <c>POST /v1/models/{name}/predict</c> for image files, a page at <c>/</c>,
/// and <c>/metrics</c>. Single-image requests from many clients are merged into batches by <see cref="OnnxScorer.ScoreAsync"/>.
/// </summary>
public sealed class ResNetServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly Dictionary<string, ServedModel> _models;
    private readonly ServerOptions _options;
    private readonly Metrics _metrics;

    private ResNetServer(WebApplication app, Dictionary<string, ServedModel> models, ServerOptions options, Metrics metrics)
    {
        _metrics = metrics;
        _app = app;
        _models = models;
        _options = options;
    }

    /// <summary>The address the server listens on (e.g. <c>http://127.0.0.1:41234</c>), once started.</summary>
    public string Address => _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();

    /// <summary>Names of the served models.</summary>
    public IReadOnlyCollection<string> ModelNames => _models.Keys;

    /// <summary>Loads the models and builds the server (not yet listening).</summary>
    /// <exception cref="ArgumentException">No models, or two models with one name.</exception>
    public static ResNetServer Create(ServerOptions options, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Models.Count == 0)
            throw new ArgumentException("No model to serve: give at least one ONNX file (resnet serve --model m.onnx).", nameof(options));
        var metrics = new Metrics();
        var models = new Dictionary<string, ServedModel>(StringComparer.Ordinal);
        try
        {
            foreach (var path in options.Models)
            {
                string name = TritonRepository.ModelName(path);
                if (models.ContainsKey(name))
                    throw new ArgumentException($"Two models are named '{name}' ({path}); serve files with different names.", nameof(options));
                var scorer = new OnnxScorer(path, new OnnxScorerOptions
                {
                    MaxBatchSize = options.MaxBatchSize,
                    MaxQueueDelay = options.MaxQueueDelay,
                    MaxQueuedImages = options.MaxQueuedImages,
                    IntraOpThreads = options.Threads,
                    BatchCompleted = b =>
                    {
                        metrics.BatchSize.Observe(b.Images);
                        metrics.QueueTime.Observe(b.OldestWait.TotalSeconds);
                    },
                });
                models[name] = new ServedModel(name, scorer);
                log?.Invoke($"model '{name}': {path}, input [N, {scorer.Info.Channels}, {scorer.Info.Height}, {scorer.Info.Width}], {scorer.Info.ClassCount} classes");
            }
        }
        catch
        {
            foreach (var m in models.Values) m.Scorer.Dispose();
            throw;
        }

        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Limits.MaxRequestBodySize = options.MaxRequestBytes;
            k.Listen(System.Net.IPAddress.Parse(options.Host), options.Port);
        });
        builder.Services.Configure<HostOptions>(h => h.ShutdownTimeout = options.ShutdownTimeout);
        var app = builder.Build();
        var server = new ResNetServer(app, models, options, metrics);
        server.Map(app);
        return server;
    }

    /// <summary>Starts listening.</summary>
    public Task StartAsync(CancellationToken cancel = default) => _app.StartAsync(cancel);

    /// <summary>Stops accepting connections, lets in-flight requests finish, then stops.</summary>
    public Task StopAsync(CancellationToken cancel = default) => _app.StopAsync(cancel);

    /// <summary>After <see cref="StartAsync"/>: waits until the process is asked to stop (SIGTERM, Ctrl+C), then stops, finishing in-flight requests first.</summary>
    public Task WaitForShutdownAsync() => _app.WaitForShutdownAsync();

    /// <summary>Stops the server and releases the models (queued requests finish first).</summary>
    public async ValueTask DisposeAsync()
    {
        await _app.DisposeAsync().ConfigureAwait(false);
        foreach (var m in _models.Values) m.Scorer.Dispose();
    }

    private void Map(WebApplication app)
    {
        app.Use(async (ctx, next) =>
        {
            long start = Stopwatch.GetTimestamp();
            try
            {
                await next(ctx).ConfigureAwait(false);
            }
            catch (Exception ex) when (!ctx.Response.HasStarted)
            {
                var (status, message) = Classify(ex);
                if (status == StatusCodes.Status503ServiceUnavailable) ctx.Response.Headers.RetryAfter = "1";
                await WriteError(ctx, status, message).ConfigureAwait(false);
            }
            finally
            {
                string route = (ctx.GetEndpoint() as RouteEndpoint)?.RoutePattern.RawText ?? "other";
                _metrics.Request(route, ctx.Response.StatusCode, Stopwatch.GetElapsedTime(start).TotalSeconds);
            }
        });

        app.MapGet("/", () => Results.Content(Page, "text/html; charset=utf-8"));
        app.MapGet("/metrics", () => Results.Text(_metrics.Render() + QueueGauge(), "text/plain; version=0.0.4; charset=utf-8"));
        app.MapGet("/v2", () => Results.Json(new JsonObject
        {
            ["name"] = "resnet-serve",
            ["version"] = typeof(ResNetServer).Assembly.GetName().Version?.ToString(),
            ["extensions"] = new JsonArray("classification", "binary_tensor_data", "model_repository"),
        }));
        app.MapGet("/v2/health/live", () => Results.Ok());
        app.MapGet("/v2/health/ready", () => Results.Ok());
        app.MapGet("/v2/models/{name}", (string name) => Results.Json(ModelMetadata(Find(name))));
        app.MapGet("/v2/models/{name}/ready", (string name) => { Find(name); return Results.Ok(); });
        app.MapGet("/v1/models", () => Results.Json(new JsonObject
        {
            ["models"] = new JsonArray(_models.Values.Select(m => (JsonNode)new JsonObject
            {
                ["name"] = m.Name,
                ["input"] = new JsonArray(m.Scorer.Info.Channels, m.Scorer.Info.Height, m.Scorer.Info.Width),
                ["classes"] = new JsonArray(m.Scorer.Info.ClassNames.Select(c => (JsonNode)c).ToArray()),
            }).ToArray()),
        }));
        app.MapPost("/v2/models/{name}/infer", (string name, HttpContext ctx) => Infer(Find(name), ctx));
        app.MapPost("/v1/models/{name}/predict", (string name, HttpContext ctx) => Predict(Find(name), ctx));
    }

    private string QueueGauge() =>
        "# HELP resnet_queued_images Images waiting in a model's batching queue.\n# TYPE resnet_queued_images gauge\n" +
        string.Concat(_models.Values.Select(m => $"resnet_queued_images{{model=\"{m.Name}\"}} {m.Scorer.QueuedImages}\n"));

    private static (int Status, string Message) Classify(Exception ex) => ex switch
    {
        RequestException r => (r.Status, r.Message),
        ScorerQueueFullException q => (StatusCodes.Status503ServiceUnavailable, q.Message),
        BadHttpRequestException b when b.StatusCode == StatusCodes.Status413PayloadTooLarge => (413, "The request body is larger than the server's limit; send smaller or fewer images."),
        BadHttpRequestException b => (b.StatusCode, b.Message),
        ImageTooLargeException or CorruptDataException or InputShapeException => (StatusCodes.Status400BadRequest, ex.Message),
        JsonException j => (StatusCodes.Status400BadRequest, $"The request is not valid JSON: {j.Message}"),
        _ => (StatusCodes.Status500InternalServerError, $"Internal error: {ex.Message}"),
    };

    private static Task WriteError(HttpContext ctx, int status, string message)
    {
        ctx.Response.StatusCode = status;
        return ctx.Response.WriteAsJsonAsync(new JsonObject { ["error"] = message });
    }

    private ServedModel Find(string name) => _models.TryGetValue(name, out var m) ? m
        : throw new RequestException(StatusCodes.Status404NotFound,
            $"Unknown model '{name}'; this server has {string.Join(", ", _models.Keys.Select(k => $"'{k}'"))}.");

    private static JsonObject ModelMetadata(ServedModel m) => new()
    {
        ["name"] = m.Name,
        ["versions"] = new JsonArray("1"),
        ["platform"] = "onnxruntime_onnx",
        ["inputs"] = new JsonArray(new JsonObject
        {
            ["name"] = m.Scorer.InputName,
            ["datatype"] = "FP32",
            ["shape"] = new JsonArray(-1, m.Scorer.Info.Channels, m.Scorer.Info.Height, m.Scorer.Info.Width),
        }),
        ["outputs"] = new JsonArray(m.Outputs.Select(o => (JsonNode)new JsonObject
        {
            ["name"] = o.Name,
            ["datatype"] = "FP32",
            ["shape"] = new JsonArray(-1, o.Length),
        }).ToArray()),
        ["parameters"] = new JsonObject
        {
            ["classes"] = new JsonArray(m.Scorer.Info.ClassNames.Select(c => (JsonNode)c).ToArray()),
            ["input_range"] = m.Scorer.Info.Normalization.Range == PixelRange.ZeroTo255 ? "0..255" : "0..1",
        },
    };

    // Reads the whole body, refusing more than the limit (Kestrel enforces it too, for bodies without a length).
    private async Task<byte[]> ReadBody(HttpContext ctx)
    {
        if (ctx.Request.ContentLength > _options.MaxRequestBytes)
            throw new RequestException(StatusCodes.Status413PayloadTooLarge,
                $"The request body is {ctx.Request.ContentLength} bytes; the limit is {_options.MaxRequestBytes}. Send smaller or fewer images.");
        using var buffer = new MemoryStream();
        await ctx.Request.Body.CopyToAsync(buffer, ctx.RequestAborted).ConfigureAwait(false);
        if (buffer.Length == 0)
            throw new RequestException(StatusCodes.Status400BadRequest, "The request body is empty; send a JSON inference request or an image file.");
        return buffer.ToArray();
    }

    private async Task Predict(ServedModel m, HttpContext ctx)
    {
        int top = 5;
        if (ctx.Request.Query.TryGetValue("top", out var t) && (!int.TryParse(t, out top) || top < 1))
            throw new RequestException(StatusCodes.Status400BadRequest, $"top must be a whole number of at least 1, got '{t}'.");
        byte[] body = await ReadBody(ctx).ConfigureAwait(false);
        var files = new List<(string Name, byte[] Bytes)>();
        if (ctx.Request.ContentType?.StartsWith("multipart/form-data", StringComparison.OrdinalIgnoreCase) == true)
        {
            ctx.Request.Body = new MemoryStream(body);
            var form = await ctx.Request.ReadFormAsync(ctx.RequestAborted).ConfigureAwait(false);
            foreach (var f in form.Files)
            {
                using var ms = new MemoryStream();
                await f.CopyToAsync(ms, ctx.RequestAborted).ConfigureAwait(false);
                files.Add((f.FileName, ms.ToArray()));
            }
            if (files.Count == 0)
                throw new RequestException(StatusCodes.Status400BadRequest, "The form holds no file; attach the image as a file field (e.g. curl -F image=@cat.jpg).");
        }
        else
        {
            files.Add(("body", body));
        }

        var info = m.Scorer.Info;
        int per = m.Scorer.ImageLength;
        var tensor = new float[files.Count * per];
        for (int i = 0; i < files.Count; i++)
        {
            var image = ImageTensors.Decode(files[i].Bytes, files[i].Name, info, _options.MaxImageSide);
            ImageTensors.ToTensor(image, info.Normalization.Range).CopyTo(tensor, i * per);
        }
        var result = await m.Scorer.ScoreAsync(tensor, files.Count).ConfigureAwait(false);
        var predictions = new JsonArray();
        for (int i = 0; i < files.Count; i++)
            predictions.Add(new JsonObject
            {
                ["file"] = files[i].Name,
                ["top"] = new JsonArray(m.Scorer.TopK(result, i, top).Select(c => (JsonNode)new JsonObject
                {
                    ["index"] = c.Index,
                    ["label"] = c.Label,
                    ["probability"] = c.Probability,
                }).ToArray()),
            });
        await ctx.Response.WriteAsJsonAsync(new JsonObject { ["model"] = m.Name, ["predictions"] = predictions }, ctx.RequestAborted).ConfigureAwait(false);
    }

    private async Task Infer(ServedModel m, HttpContext ctx)
    {
        byte[] body = await ReadBody(ctx).ConfigureAwait(false);
        var request = InferenceRequest.Parse(body, ctx.Request.Headers[InferenceRequest.HeaderLengthHeader], m);
        var result = await m.Scorer.ScoreAsync(request.Images, request.Count, request.WantsFeatures).ConfigureAwait(false);
        var (json, binary) = request.Respond(m, result);
        if (binary.Length == 0)
        {
            ctx.Response.ContentType = "application/json";
            await ctx.Response.Body.WriteAsync(json, ctx.RequestAborted).ConfigureAwait(false);
            return;
        }
        ctx.Response.ContentType = "application/octet-stream";
        ctx.Response.Headers[InferenceRequest.HeaderLengthHeader] = json.Length.ToString(System.Globalization.CultureInfo.InvariantCulture);
        ctx.Response.ContentLength = json.Length + binary.Length;
        await ctx.Response.Body.WriteAsync(json, ctx.RequestAborted).ConfigureAwait(false);
        await ctx.Response.Body.WriteAsync(binary, ctx.RequestAborted).ConfigureAwait(false);
    }

    private static readonly Lazy<string> PageText = new(() =>
    {
        using var s = typeof(ResNetServer).Assembly.GetManifestResourceStream("ResNet.Serving.index.html")!;
        using var r = new StreamReader(s);
        return r.ReadToEnd();
    });

    private static string Page => PageText.Value;
}

namespace ResNet.Serving;

/// <summary>Options of <see cref="ResNetServer"/>.</summary>
public sealed class ServerOptions
{
    /// <summary>ONNX files to serve; each is served under its file name without extension (<see cref="TritonRepository.ModelName"/>).</summary>
    public IReadOnlyList<string> Models { get; init; } = [];

    /// <summary>Address to listen on; default loopback.</summary>
    public string Host { get; init; } = "127.0.0.1";

    /// <summary>TCP port; 0 picks a free one (read it back from <see cref="ResNetServer.Address"/>).</summary>
    public int Port { get; init; } = 8080;

    /// <summary>Largest batch the scorer runs. Default 32.</summary>
    public int MaxBatchSize { get; init; } = 32;

    /// <summary>How long a batch waits for more requests (dynamic batching). Default 2 ms; zero batches only what is already waiting.</summary>
    public TimeSpan MaxQueueDelay { get; init; } = TimeSpan.FromMilliseconds(2);

    /// <summary>Most images waiting per model before requests get 503 with Retry-After. Default 256; 0 is unbounded.</summary>
    public int MaxQueuedImages { get; init; } = 256;

    /// <summary>Largest request body in bytes (413 above it). Default 16 MiB.</summary>
    public long MaxRequestBytes { get; init; } = 16L << 20;

    /// <summary>Largest image side in pixels (400 above it). Default 8192.</summary>
    public int MaxImageSide { get; init; } = 8192;

    /// <summary>ONNX Runtime intra-op threads (0 = one per core).</summary>
    public int Threads { get; init; }

    /// <summary>How long shutdown waits for in-flight requests. Default 30 s.</summary>
    public TimeSpan ShutdownTimeout { get; init; } = TimeSpan.FromSeconds(30);
}

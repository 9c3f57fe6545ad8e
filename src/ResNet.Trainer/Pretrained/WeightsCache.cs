using System.Net.Sockets;
using System.Security.Cryptography;

namespace ResNet.Trainer.Pretrained;

/// <summary>How far a download has come: report it as a progress line with <see cref="ToString"/>.</summary>
/// <param name="FileName">The file being fetched.</param>
/// <param name="BytesReceived">Bytes written so far.</param>
/// <param name="TotalBytes">The size the source announced, when it did.</param>
public sealed record DownloadProgress(string FileName, long BytesReceived, long? TotalBytes)
{
    /// <summary>A progress line: <c>resnet50-11ad3fa6.pth: 12.3 of 97.8 MB (13%)</c>.</summary>
    public override string ToString() => TotalBytes is > 0 and long total
        ? $"{FileName}: {BytesReceived / 1e6:F1} of {total / 1e6:F1} MB ({100.0 * BytesReceived / total:F0}%)"
        : $"{FileName}: {BytesReceived / 1e6:F1} MB";
}

/// <summary>
/// A pretrained file could not be put in the cache. The message says which file, what was expected, what was tried and
/// where to place the file by hand; nothing half-written is left in the cache.
/// </summary>
public sealed class PretrainedDownloadException(string message, string fileName, string source, string cachePath, Exception? inner = null)
    : IOException(message, inner)
{
    /// <summary>The file that was being fetched.</summary>
    public string FileName { get; } = fileName;

    /// <summary>The address or local path it was fetched from.</summary>
    public string Address { get; } = source;

    /// <summary>Where the file belongs: placing the right file there by hand makes the next use find it.</summary>
    public string CachePath { get; } = cachePath;
}

/// <summary>
/// The folder where pretrained files are kept once downloaded, and the download itself: streamed to a temporary file in the
/// same folder, SHA-256 checked against the prefix in the file name (as torch.hub's <c>check_hash</c> does), then renamed
/// into place, so a file under its final name is always whole and verified.
/// </summary>
public sealed class WeightsCache
{
    /// <summary>Environment variable naming the cache folder (default: <c>$XDG_CACHE_HOME/resnet-mlnet</c>, else <c>~/.cache/resnet-mlnet</c>).</summary>
    public const string FolderVariable = "RESNET_MLNET_CACHE";

    /// <summary>Environment variable naming a mirror: a base URL the file names are appended to, or a local folder that holds the files.</summary>
    public const string MirrorVariable = "RESNET_MLNET_WEIGHTS_URL";

    private const long ProgressStep = 1 << 20; // a line per MiB at most
    private static readonly Lazy<HttpClient> SharedClient = new(() => new HttpClient { Timeout = TimeSpan.FromMinutes(10) });
    private readonly HttpClient? _client;

    /// <summary>A cache in <paramref name="folder"/>, fetching from the official addresses or from <paramref name="mirror"/>.</summary>
    /// <param name="folder">Where verified files are kept.</param>
    /// <param name="mirror">A base URL (<c>https://host/models/</c>) or a local folder that holds the files under their own names; null for the official addresses.</param>
    /// <param name="client">The HTTP client to use; a shared one by default.</param>
    public WeightsCache(string folder, string? mirror = null, HttpClient? client = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        Folder = Path.GetFullPath(folder);
        Mirror = string.IsNullOrWhiteSpace(mirror) ? null : mirror.Trim();
        _client = client;
    }

    /// <summary>The cache folder.</summary>
    public string Folder { get; }

    /// <summary>The mirror (base URL or local folder), or null for the official addresses.</summary>
    public string? Mirror { get; }

    /// <summary>The cache the environment describes (<see cref="FolderVariable"/>, <see cref="MirrorVariable"/>).</summary>
    public static WeightsCache Default => FromEnvironment(Environment.GetEnvironmentVariable);

    /// <summary>The cache that the variables <paramref name="variable"/> returns describe.</summary>
    public static WeightsCache FromEnvironment(Func<string, string?> variable)
    {
        ArgumentNullException.ThrowIfNull(variable);
        string? folder = variable(FolderVariable);
        if (string.IsNullOrWhiteSpace(folder))
        {
            string? xdg = variable("XDG_CACHE_HOME");
            string root = !string.IsNullOrWhiteSpace(xdg) ? xdg
                : OperatingSystem.IsWindows() ? Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData)
                : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
            folder = Path.Combine(root, "resnet-mlnet");
        }
        return new WeightsCache(folder, variable(MirrorVariable));
    }

    /// <summary>Where <paramref name="weights"/>' file lives in this cache (whether or not it is there yet).</summary>
    public string PathOf(PretrainedWeights weights)
    {
        ArgumentNullException.ThrowIfNull(weights);
        return Path.Combine(Folder, weights.FileName);
    }

    /// <summary>Where the file is fetched from: the mirror's copy when there is a mirror, else the official address.</summary>
    /// <exception cref="ArgumentException">The entry has no address (it ships in a NuGet package).</exception>
    public string SourceOf(PretrainedWeights weights)
    {
        ArgumentNullException.ThrowIfNull(weights);
        if (weights.Url is null)
            throw new ArgumentException($"'{weights.Name}' is not downloaded: its file ships in a NuGet package ({weights.Source}).", nameof(weights));
        if (Mirror is null) return weights.Url.AbsoluteUri;
        if (LocalMirror() is string folder) return Path.Combine(folder, weights.FileName);
        return Mirror.TrimEnd('/') + "/" + Uri.EscapeDataString(weights.FileName);
    }

    /// <summary>
    /// Returns the path of <paramref name="weights"/>' file in the cache, downloading and verifying it first when it is not there.
    /// </summary>
    /// <exception cref="PretrainedDownloadException">The file could not be fetched, or it was not the published file.</exception>
    public async Task<string> EnsureAsync(PretrainedWeights weights, IProgress<DownloadProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        string target = PathOf(weights);
        if (File.Exists(target)) return target; // only verified files ever get this name
        string source = SourceOf(weights);
        try
        {
            Directory.CreateDirectory(Folder);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw Failure(weights, source, target, $"the cache folder {Folder} cannot be created ({ex.Message}); set {FolderVariable} to a writable folder.", ex);
        }
        // Same folder as the target, so the final rename is atomic; a unique name, so concurrent downloads do not collide.
        string temp = Path.Combine(Folder, $"{weights.FileName}.{Guid.NewGuid():N}.partial");
        try
        {
            string sha256 = await CopyAsync(weights, source, temp, target, progress, cancellationToken).ConfigureAwait(false);
            if (weights.Sha256Prefix is string prefix && !sha256.StartsWith(prefix, StringComparison.Ordinal))
                throw Failure(weights, source, target,
                    $"the file from {source} has SHA-256 {sha256}, which does not start with {prefix} as its name requires: it is damaged or " +
                    "not the published file, and was deleted.");
            File.Move(temp, target, overwrite: true);
            return target;
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    /// <summary>The synchronous form of <see cref="EnsureAsync"/>.</summary>
    /// <exception cref="PretrainedDownloadException">The file could not be fetched, or it was not the published file.</exception>
    public string Ensure(PretrainedWeights weights, IProgress<DownloadProgress>? progress = null, CancellationToken cancellationToken = default) =>
        EnsureAsync(weights, progress, cancellationToken).GetAwaiter().GetResult();

    // Streams the source into temp, hashing on the way; returns the SHA-256 in lower-case hex.
    private async Task<string> CopyAsync(PretrainedWeights weights, string source, string temp, string target, IProgress<DownloadProgress>? progress, CancellationToken ct)
    {
        HttpResponseMessage? response = null;
        Stream input;
        long? length;
        try
        {
            if (LocalMirror() is not null)
            {
                if (!File.Exists(source))
                    throw Failure(weights, source, target, $"the mirror folder {Mirror} has no file named {weights.FileName}.");
                input = File.OpenRead(source);
                length = input.Length;
            }
            else
            {
                try
                {
                    response = await (_client ?? SharedClient.Value).GetAsync(source, HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false);
                }
                catch (HttpRequestException ex)
                {
                    string why = ex.InnerException is SocketException s ? $"could not connect to {source} ({s.SocketErrorCode}: {s.Message})" : $"requesting {source} failed ({ex.Message})";
                    throw Failure(weights, source, target, why + ".", ex);
                }
                catch (TaskCanceledException ex) when (!ct.IsCancellationRequested)
                {
                    throw Failure(weights, source, target, $"{source} did not answer within {(_client ?? SharedClient.Value).Timeout.TotalSeconds:F0} s.", ex);
                }
                if (!response.IsSuccessStatusCode)
                    throw Failure(weights, source, target, $"{source} answered HTTP {(int)response.StatusCode} {response.ReasonPhrase}.");
                length = response.Content.Headers.ContentLength;
                input = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
            }

            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            long received = 0, reported = 0;
            await using (input.ConfigureAwait(false))
            await using (var output = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true))
            {
                var buffer = new byte[1 << 16];
                progress?.Report(new DownloadProgress(weights.FileName, 0, length));
                while (true)
                {
                    int n;
                    try
                    {
                        n = await input.ReadAsync(buffer, ct).ConfigureAwait(false);
                    }
                    catch (Exception ex) when (ex is IOException or HttpRequestException)
                    {
                        throw Failure(weights, source, target, Truncated(source, received, length) + $" ({ex.Message}); nothing was kept, try again.", ex);
                    }
                    if (n == 0) break;
                    hash.AppendData(buffer, 0, n);
                    await output.WriteAsync(buffer.AsMemory(0, n), ct).ConfigureAwait(false);
                    received += n;
                    if (received - reported >= ProgressStep) { progress?.Report(new DownloadProgress(weights.FileName, received, length)); reported = received; }
                }
            }
            if (length is long expected && received != expected)
                throw Failure(weights, source, target, Truncated(source, received, length) + "; nothing was kept, try again.");
            progress?.Report(new DownloadProgress(weights.FileName, received, length));
            return Convert.ToHexStringLower(hash.GetHashAndReset());
        }
        finally
        {
            response?.Dispose();
        }
    }

    private static string Truncated(string source, long received, long? length) =>
        $"the download from {source} stopped after {received:N0}" + (length is long l ? $" of {l:N0} bytes" : " bytes");

    private string? LocalMirror()
    {
        if (Mirror is null) return null;
        if (Uri.TryCreate(Mirror, UriKind.Absolute, out var uri))
            return uri.IsFile ? uri.LocalPath : null;
        return Path.GetFullPath(Mirror);
    }

    private PretrainedDownloadException Failure(PretrainedWeights weights, string source, string target, string what, Exception? inner = null)
    {
        string expected = weights.Sha256Prefix is string p ? $" (its SHA-256 must start with {p})" : "";
        string official = weights.Url?.AbsoluteUri ?? source;
        return new PretrainedDownloadException(
            $"Could not get the pretrained weights '{weights.Name}', file {weights.FileName}: {what} " +
            $"To place it by hand, download {official} where you have access and save it as '{target}'{expected}, " +
            $"or set {MirrorVariable} to a mirror URL or a local folder that holds {weights.FileName}.",
            weights.FileName, source, target, inner);
    }
}

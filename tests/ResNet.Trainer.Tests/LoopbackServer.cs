using System.Net;
using System.Net.Sockets;

namespace ResNet.Trainer.Tests;

/// <summary>What the server answers for one request path.</summary>
/// <param name="Status">HTTP status.</param>
/// <param name="Body">The body; its full length is announced in Content-Length.</param>
/// <param name="SendOnly">When set, only this many bytes are sent before the connection is cut (a partial download).</param>
internal sealed record LoopbackReply(int Status, byte[] Body, int? SendOnly = null);

/// <summary>A real HTTP server on 127.0.0.1 for download tests; it counts requests and records their paths.</summary>
internal sealed class LoopbackServer : IDisposable
{
    private readonly HttpListener _listener = new();
    private readonly List<string> _paths = [];

    private LoopbackServer(Func<string, LoopbackReply> reply)
    {
        int port = FreePort();
        BaseUrl = new Uri($"http://127.0.0.1:{port}/");
        _listener.Prefixes.Add(BaseUrl.AbsoluteUri);
        _listener.Start();
        _ = Task.Run(async () =>
        {
            while (_listener.IsListening)
            {
                HttpListenerContext ctx;
                try { ctx = await _listener.GetContextAsync(); } catch { return; }
                string path = ctx.Request.Url!.AbsolutePath;
                lock (_paths) _paths.Add(path);
                var r = reply(path);
                try
                {
                    ctx.Response.StatusCode = r.Status;
                    ctx.Response.ContentLength64 = r.Body.Length;
                    await ctx.Response.OutputStream.WriteAsync(r.Body.AsMemory(0, r.SendOnly ?? r.Body.Length));
                    if (r.SendOnly is null) ctx.Response.Close();
                    else { await ctx.Response.OutputStream.FlushAsync(); ctx.Response.Abort(); }
                }
                catch (HttpListenerException) { } // the client went away
            }
        });
    }

    /// <summary>The server's root, ending in a slash.</summary>
    public Uri BaseUrl { get; }

    /// <summary>The paths requested so far, in order.</summary>
    public IReadOnlyList<string> Paths { get { lock (_paths) return [.. _paths]; } }

    /// <summary>Answers every request with <paramref name="reply"/>'s reply for its path.</summary>
    public static LoopbackServer Start(Func<string, LoopbackReply> reply) => new(reply);

    /// <summary>Answers every request with 200 and <paramref name="body"/>.</summary>
    public static LoopbackServer Serving(byte[] body) => new(_ => new LoopbackReply(200, body));

    /// <summary>Serves the files of <paramref name="folder"/> by name (any leading path is ignored); 404 for others.</summary>
    public static LoopbackServer ServingFolder(string folder) => new(path =>
    {
        string file = Path.Combine(folder, Path.GetFileName(Uri.UnescapeDataString(path)));
        return File.Exists(file) ? new LoopbackReply(200, File.ReadAllBytes(file)) : new LoopbackReply(404, "not here"u8.ToArray());
    });

    /// <summary>A loopback port nothing listens on (at the moment it is returned): connecting to it is refused.</summary>
    public static int FreePort()
    {
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        int port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        return port;
    }

    public void Dispose() => _listener.Close();
}

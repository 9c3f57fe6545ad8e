using System.Formats.Tar;
using System.IO.Compression;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using ResNet.Trainer.Data;

namespace ResNet.Trainer.Tests.Data;

public class CifarDownloadTests
{
    // A .tar.gz in CIFAR-10's layout (cifar-10-batches-bin/data_batch_1.bin) with two records.
    private static byte[] Archive()
    {
        var record = new byte[2 * 3073];
        record[0] = 7; record[3073] = 2;
        using var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Fastest, leaveOpen: true))
        using (var tar = new TarWriter(gz))
        {
            var entry = new PaxTarEntry(TarEntryType.RegularFile, "cifar-10-batches-bin/data_batch_1.bin") { DataStream = new MemoryStream(record) };
            tar.WriteEntry(entry);
        }
        return ms.ToArray();
    }

    private static (HttpListener Listener, Uri Url) Serve(byte[] body)
    {
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        int port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        var listener = new HttpListener();
        listener.Prefixes.Add($"http://127.0.0.1:{port}/");
        listener.Start();
        _ = Task.Run(async () =>
        {
            while (listener.IsListening)
            {
                HttpListenerContext ctx;
                try { ctx = await listener.GetContextAsync(); } catch { return; }
                ctx.Response.ContentLength64 = body.Length;
                await ctx.Response.OutputStream.WriteAsync(body);
                ctx.Response.Close();
            }
        });
        return (listener, new Uri($"http://127.0.0.1:{port}/cifar-10-binary.tar.gz"));
    }

    [Fact]
    public async Task Download_WithTheRightChecksum_UnpacksBatchesTheReaderReads()
    {
        byte[] archive = Archive();
        var (listener, url) = Serve(archive);
        using var _ = listener;
        string dest = TestData.TempDir();
        string folder = await CifarDownload.DownloadAsync(dest, url, Convert.ToHexStringLower(MD5.HashData(archive)));
        var images = Cifar.LoadSplit(folder, train: true);
        Assert.Equal([7, 2], images.Labels);
        Assert.Empty(Directory.GetFiles(dest, "*.download"));
    }

    [Fact]
    public async Task Download_WithAWrongChecksum_FailsAndLeavesNothing()
    {
        var (listener, url) = Serve(Archive());
        using var _ = listener;
        string dest = TestData.TempDir();
        var ex = await Assert.ThrowsAsync<CorruptDataException>(() => CifarDownload.DownloadAsync(dest, url, CifarDownload.Cifar10Md5));
        Assert.Contains(CifarDownload.Cifar10Md5, ex.Message);
        Assert.Empty(Directory.EnumerateFileSystemEntries(dest));
    }
}

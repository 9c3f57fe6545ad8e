using System.Formats.Tar;
using System.IO.Compression;
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

    [Fact]
    public async Task Download_WithTheRightChecksum_UnpacksBatchesTheReaderReads()
    {
        byte[] archive = Archive();
        using var server = LoopbackServer.Serving(archive);
        var url = new Uri(server.BaseUrl, "cifar-10-binary.tar.gz");
        string dest = TestData.TempDir();
        string folder = await CifarDownload.DownloadAsync(dest, url, Convert.ToHexStringLower(MD5.HashData(archive)));
        var images = Cifar.LoadSplit(folder, train: true);
        Assert.Equal([7, 2], images.Labels);
        Assert.Empty(Directory.GetFiles(dest, "*.download"));
    }

    [Fact]
    public async Task Download_WithAWrongChecksum_FailsAndLeavesNothing()
    {
        using var server = LoopbackServer.Serving(Archive());
        var url = new Uri(server.BaseUrl, "cifar-10-binary.tar.gz");
        string dest = TestData.TempDir();
        var ex = await Assert.ThrowsAsync<CorruptDataException>(() => CifarDownload.DownloadAsync(dest, url, CifarDownload.Cifar10Md5));
        Assert.Contains(CifarDownload.Cifar10Md5, ex.Message);
        Assert.Empty(Directory.EnumerateFileSystemEntries(dest));
    }
}

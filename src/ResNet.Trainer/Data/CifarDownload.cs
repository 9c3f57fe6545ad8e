using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;

namespace ResNet.Trainer.Data;

/// <summary>Downloads and unpacks the CIFAR binary archives, verifying their MD5 checksums.</summary>
public static class CifarDownload
{
    /// <summary>The official CIFAR-10 binary archive (Krizhevsky 2009).</summary>
    public static Uri Cifar10Url { get; } = new("https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz");

    /// <summary>MD5 of <see cref="Cifar10Url"/>'s file, as published by its authors.</summary>
    public const string Cifar10Md5 = "c32a1d4ab5d03f1284b67883e8d87530";

    /// <summary>
    /// Downloads <paramref name="source"/> (a .tar.gz), checks its MD5 against <paramref name="expectedMd5"/> and unpacks
    /// it into <paramref name="destination"/>. Nothing is written to <paramref name="destination"/> unless the checksum matches.
    /// </summary>
    /// <returns>The folder holding the .bin files.</returns>
    /// <exception cref="CorruptDataException">The checksum differs (the download is deleted).</exception>
    /// <exception cref="HttpRequestException">The server could not be reached or answered with an error.</exception>
    public static async Task<string> DownloadAsync(string destination, Uri? source = null, string expectedMd5 = Cifar10Md5, HttpClient? client = null, CancellationToken cancellationToken = default)
    {
        source ??= Cifar10Url;
        Directory.CreateDirectory(destination);
        string archive = Path.Combine(destination, Path.GetFileName(source.LocalPath) + ".download");
        bool ownClient = client is null;
        client ??= new HttpClient();
        try
        {
            using (var response = await client.GetAsync(source, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false))
            {
                if (!response.IsSuccessStatusCode)
                    throw new HttpRequestException($"Downloading '{source}' failed: HTTP {(int)response.StatusCode} {response.ReasonPhrase}. Check the address, or download the file yourself and pass its folder.");
                await using var file = File.Create(archive);
                await response.Content.CopyToAsync(file, cancellationToken).ConfigureAwait(false);
            }
            string actual;
            await using (var read = File.OpenRead(archive))
                actual = Convert.ToHexStringLower(await MD5.HashDataAsync(read, cancellationToken).ConfigureAwait(false));
            if (!string.Equals(actual, expectedMd5, StringComparison.OrdinalIgnoreCase))
                throw new CorruptDataException($"'{source}' downloaded with MD5 {actual}, expected {expectedMd5}: the file is damaged or not the official archive. It was deleted; try again.", archive);
            await using (var read = File.OpenRead(archive))
            await using (var gz = new GZipStream(read, CompressionMode.Decompress))
                await TarFile.ExtractToDirectoryAsync(gz, destination, overwriteFiles: true, cancellationToken).ConfigureAwait(false);
            string? folder = Directory.EnumerateFiles(destination, "*.bin", SearchOption.AllDirectories).Select(Path.GetDirectoryName).FirstOrDefault();
            return folder ?? throw new CorruptDataException($"'{source}' holds no .bin batches; is it the binary version of CIFAR?", archive);
        }
        finally
        {
            if (File.Exists(archive)) File.Delete(archive);
            if (ownClient) client.Dispose();
        }
    }
}

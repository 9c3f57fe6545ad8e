using System.Globalization;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using ResNet.Trainer.Data;
using ResNet.Trainer.Models;
using static TorchSharp.torch;

namespace ResNet.Trainer.Training;

/// <summary>
/// A frozen trunk's pooled features of a training set, kept on disk between fits (what ML.NET's image classifier calls
/// reusing the bottleneck values cached in its workspace). A file is named by a SHA-256 key of everything the features
/// depend on (the architecture, the trunk's weights and batch-norm statistics, every image's pixels in order, and the
/// preprocessing), so a changed input gives another key and is computed afresh. Each file ends with a SHA-256 of its
/// content, so a damaged file is detected rather than trained on.
/// </summary>
internal static class FeatureCache
{
    private static readonly byte[] Magic = "RNFEAT01"u8.ToArray();
    private const int KeyLength = 32, HashLength = 32, HeaderLength = 8 + KeyLength + 8;

    /// <summary>The key of the features of <paramref name="images"/> through <paramref name="model"/>'s trunk after <paramref name="pipeline"/>'s evaluation transform.</summary>
    public static byte[] Key(ResNetModel model, IImageSource images, ImagePipeline pipeline)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        void Text(string text)
        {
            byte[] bytes = Encoding.UTF8.GetBytes(text);
            hash.AppendData(BitConverter.GetBytes(bytes.Length));
            hash.AppendData(bytes);
        }
        void Ints(params int[] values) => hash.AppendData(MemoryMarshal.AsBytes(values.AsSpan()));

        hash.AppendData(Magic);
        Text(ResNetSpecJson.ToJson(model.Spec));
        foreach (var (name, tensor) in model.state_dict())
        {
            if (name.StartsWith("fc.", StringComparison.Ordinal)) continue; // the head is what gets trained
            Text(name);
            using var values = tensor.detach().cpu().contiguous();
            Text(string.Join(",", values.shape.Select(d => d.ToString(CultureInfo.InvariantCulture))));
            if (values.dtype == ScalarType.Float32) hash.AppendData(MemoryMarshal.AsBytes<float>(values.data<float>().ToArray()));
            else if (values.dtype == ScalarType.Int64) hash.AppendData(MemoryMarshal.AsBytes<long>(values.data<long>().ToArray()));
            else throw new NotSupportedException($"The trunk's '{name}' has element type {values.dtype}; the feature cache hashes float32 and int64 tensors.");
        }
        Ints(pipeline.Channels, pipeline.Height, pipeline.Width);
        Text(pipeline.Normalization?.ToJson() ?? "no normalization");
        Text(pipeline.Augmentation.ToString());
        Ints(images.Count);
        for (int i = 0; i < images.Count; i++)
        {
            var image = images.Load(i);
            Ints(image.Width, image.Height, image.Channels);
            hash.AppendData(image.Pixels);
        }
        return hash.GetHashAndReset();
    }

    /// <summary>The cache file for <paramref name="key"/> in <paramref name="folder"/>.</summary>
    public static string PathFor(string folder, byte[] key) =>
        Path.Combine(folder, $"features-{Convert.ToHexString(key, 0, 8).ToLowerInvariant()}.bin");

    /// <summary>
    /// The features stored at <paramref name="path"/> for <paramref name="key"/> ([count, featureCount], row-major), or null:
    /// when there is no file (<paramref name="problem"/> null), or when it is damaged or holds other inputs' features
    /// (<paramref name="problem"/> says how).
    /// </summary>
    public static float[]? Read(string path, byte[] key, int count, int featureCount, out string? problem)
    {
        problem = null;
        if (!File.Exists(path)) return null;
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (IOException ex) { problem = $"it could not be read: {ex.Message}"; return null; }
        long expected = HeaderLength + (long)count * featureCount * sizeof(float) + HashLength;
        if (bytes.Length != expected)
            problem = $"it has {bytes.Length} bytes where {expected} were expected";
        else if (!bytes.AsSpan(0, Magic.Length).SequenceEqual(Magic))
            problem = "it does not start with the cache's signature";
        else if (!SHA256.HashData(bytes.AsSpan(0, bytes.Length - HashLength)).AsSpan().SequenceEqual(bytes.AsSpan(bytes.Length - HashLength)))
            problem = "its checksum does not match its content";
        else if (!bytes.AsSpan(Magic.Length, KeyLength).SequenceEqual(key))
            problem = "it holds the features of other inputs";
        else if (BitConverter.ToInt32(bytes, Magic.Length + KeyLength) != count || BitConverter.ToInt32(bytes, Magic.Length + KeyLength + 4) != featureCount)
            problem = "its dimensions differ from the training set's";
        if (problem is not null) return null;
        return MemoryMarshal.Cast<byte, float>(bytes.AsSpan(HeaderLength, count * featureCount * sizeof(float))).ToArray();
    }

    /// <summary>Stores <paramref name="features"/> ([count, featureCount]) at <paramref name="path"/>, atomically.</summary>
    public static void Write(string path, byte[] key, Tensor features)
    {
        using var cpu = features.detach().cpu().contiguous();
        int count = (int)cpu.shape[0], featureCount = (int)cpu.shape[1];
        byte[] data = MemoryMarshal.AsBytes<float>(cpu.data<float>().ToArray()).ToArray();
        AtomicFile.WriteStream(path, stream =>
        {
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            void Put(ReadOnlySpan<byte> bytes)
            {
                stream.Write(bytes);
                hash.AppendData(bytes);
            }
            Put(Magic);
            Put(key);
            Put(BitConverter.GetBytes(count));
            Put(BitConverter.GetBytes(featureCount));
            Put(data);
            stream.Write(hash.GetHashAndReset());
        });
    }
}

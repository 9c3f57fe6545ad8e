using System.Collections;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace ResNet.Trainer.Models;

/// <summary>Thrown when a weights file does not fit a model: the message lists the first mismatching keys and shapes.</summary>
public sealed class WeightsMismatchException(string message) : IOException(message);

/// <summary>
/// Loads and saves model weights as PyTorch state_dicts (<c>.pth</c>/<c>.pt</c>, <c>.safetensors</c>) or
/// TorchSharp's own format (<c>.dat</c>). Keys are torchvision's, so torchvision checkpoints load as they are.
/// </summary>
public static class ResNetWeights
{
    private const int MaxListed = 4; // per kind of problem

    /// <summary>Loads weights into <paramref name="model"/>, checking every key and shape first; the model is unchanged on error.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="WeightsMismatchException">Keys or shapes differ; the message lists the first mismatches.</exception>
    public static void Load(nn.Module model, string path, bool strict = true)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (!File.Exists(path))
            throw new FileNotFoundException($"Weights file '{path}' does not exist. Check the path, or train a model first.", path);

        Dictionary<string, Tensor> source = ReadStateDict(path);
        try
        {
            var target = model.state_dict();
            var missing = new List<string>();
            var shapes = new List<string>();
            foreach (var (key, tensor) in target)
            {
                if (!source.TryGetValue(key, out var given))
                    missing.Add($"missing key '{key}' (expected shape [{string.Join(", ", tensor.shape)}])");
                else if (!given.shape.SequenceEqual(tensor.shape))
                    shapes.Add($"'{key}': file has shape [{string.Join(", ", given.shape)}], model expects [{string.Join(", ", tensor.shape)}]");
            }
            var unexpected = source.Keys.Where(k => !target.ContainsKey(k)).Order(StringComparer.Ordinal).Select(k => $"unexpected key '{k}'").ToList();
            if (!strict) { missing.Clear(); unexpected.Clear(); }
            if (shapes.Count + missing.Count + unexpected.Count > 0)
                throw new WeightsMismatchException(
                    $"Weights file '{path}' does not match {model.GetName()}: {shapes.Count} shape mismatch(es), {missing.Count} missing key(s), " +
                    $"{unexpected.Count} unexpected key(s). First: " +
                    string.Join("; ", shapes.Take(MaxListed).Concat(missing.Take(MaxListed)).Concat(unexpected.Take(MaxListed))) +
                    ". Check the architecture name (and NumClasses/InputChannels), or pass strict: false to load the matching keys only.");

            using var _ = no_grad();
            foreach (var (key, tensor) in target)
                if (source.TryGetValue(key, out var given))
                    tensor.copy_(given.to(tensor.dtype));
        }
        finally
        {
            foreach (var t in source.Values) t.Dispose();
        }
    }

    /// <summary>
    /// Loads pretrained weights for transfer learning: every key of the file that the model has with the same shape.
    /// The classifier (<c>fc</c>) is left as initialised when its shape differs (another class count).
    /// </summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="WeightsMismatchException">A key outside the classifier is missing or differs in shape (another architecture).</exception>
    public static void LoadBackbone(nn.Module model, string path)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (!File.Exists(path))
            throw new FileNotFoundException($"Weights file '{path}' does not exist. Check the path, or train a model first.", path);
        var source = ReadStateDict(path);
        try
        {
            var target = model.state_dict();
            var problems = target
                .Where(kv => !kv.Key.StartsWith("fc.", StringComparison.Ordinal))
                .Where(kv => !source.TryGetValue(kv.Key, out var t) || !t.shape.SequenceEqual(kv.Value.shape))
                .Select(kv => source.TryGetValue(kv.Key, out var t)
                    ? $"'{kv.Key}': file has shape [{string.Join(", ", t.shape)}], model expects [{string.Join(", ", kv.Value.shape)}]"
                    : $"missing key '{kv.Key}'")
                .ToList();
            if (problems.Count > 0)
                throw new WeightsMismatchException(
                    $"Pretrained weights '{path}' do not fit {model.GetName()}'s backbone ({problems.Count} problem(s)); first: {string.Join("; ", problems.Take(MaxListed))}. " +
                    "Use weights of the same architecture and input channels.");
            using var _ = no_grad();
            foreach (var (key, tensor) in target)
                if (source.TryGetValue(key, out var given) && given.shape.SequenceEqual(tensor.shape))
                    tensor.copy_(given.to(tensor.dtype));
        }
        finally
        {
            foreach (var t in source.Values) t.Dispose();
        }
    }

    /// <summary>Reads a state_dict from <c>.pth</c>/<c>.pt</c>/<c>.bin</c> (PyTorch pickle), <c>.safetensors</c> or <c>.dat</c> (TorchSharp).</summary>
    /// <exception cref="InvalidDataException">The file is not a state_dict in the format its extension names.</exception>
    public static Dictionary<string, Tensor> ReadStateDict(string path)
    {
        string ext = Path.GetExtension(path).ToLowerInvariant();
        try
        {
            switch (ext)
            {
                case ".safetensors":
                    return new Dictionary<string, Tensor>(Safetensors.LoadStateDict(path));
                case ".dat":
                    return ReadTorchSharpDat(path);
                default:
                    using (var stream = File.OpenRead(path))
                    {
                        var table = PyTorchUnpickler.UnpickleStateDict(stream);
                        var dict = new Dictionary<string, Tensor>();
                        foreach (DictionaryEntry e in table)
                            if (e.Value is Tensor t) dict[(string)e.Key] = t;
                        return dict;
                    }
            }
        }
        catch (Exception ex) when (ex is not FileNotFoundException and not OutOfMemoryException and not InvalidDataException)
        {
            throw new InvalidDataException(
                $"Could not read weights file '{path}' as a {(ext == ".dat" ? "TorchSharp .dat" : ext == ".safetensors" ? "safetensors" : "PyTorch state_dict (torch.save)")} file: {ex.Message}. " +
                "Save with torch.save(model.state_dict(), path) in PyTorch, or with ResNetWeights.Save.", ex);
        }
    }

    /// <summary>Saves the model's state_dict; the format follows the extension (<c>.pth</c>, <c>.safetensors</c>, else <c>.dat</c>). Written atomically.</summary>
    public static void Save(nn.Module model, string path)
    {
        ArgumentNullException.ThrowIfNull(model);
        string ext = Path.GetExtension(path).ToLowerInvariant();
        using var scope = NewDisposeScope(); // whatever the writers make on the way
        AtomicFile.Write(path, temp =>
        {
            switch (ext)
            {
                case ".pth" or ".pt" or ".bin": model.save_py(temp); break;
                case ".safetensors": model.save_safetensors(temp); break;
                default: model.save(temp); break;
            }
        });
    }

    // TorchSharp's .dat: a count, then (name, tensor) pairs, as written by Module.save.
    private static Dictionary<string, Tensor> ReadTorchSharpDat(string path)
    {
        using var reader = new BinaryReader(File.OpenRead(path));
        long count = ReadLeb128(reader);
        var dict = new Dictionary<string, Tensor>();
        for (long i = 0; i < count; i++)
        {
            string key = reader.ReadString();
            dict[key] = TensorExtensionMethods.Load(reader);
        }
        return dict;
    }

    private static long ReadLeb128(BinaryReader reader)
    {
        long result = 0;
        for (int shift = 0; shift < 64; shift += 7)
        {
            byte b = reader.ReadByte();
            result |= (long)(b & 0x7f) << shift;
            if ((b & 0x80) == 0) return result;
        }
        throw new InvalidDataException("Corrupt length prefix.");
    }
}

using System.Text;
using System.Text.Json;
using ResNet.Trainer.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace ResNet.Trainer.Training;

/// <summary>Everything besides tensors that a resumed run needs to continue exactly where it stopped.</summary>
internal sealed record CheckpointState
{
    public required string SpecJson { get; init; }
    public required string SpecName { get; init; }
    public int Epoch { get; init; }            // 0-based epoch in progress
    public int BatchInEpoch { get; init; }     // batches of that epoch already done
    public long Iteration { get; init; }
    public double EpochLossSum { get; init; }
    public long EpochErrors { get; init; }
    public long EpochSeen { get; init; }
    public double PlateauFactor { get; init; } = 1;
    public double PlateauBest { get; init; } = double.PositiveInfinity;
    public int PlateauBad { get; init; }
    public bool WarmupDone { get; init; }
    public double[] WarmupWindow { get; init; } = [];
    public double BestValidationError { get; init; } = double.PositiveInfinity;
    public int BestEpoch { get; init; }
    public int EpochsWithoutImprovement { get; init; }
    public long EmaUpdates { get; init; }      // updates of the weights' moving average so far (its warm-up's t)
    public List<EpochStats> History { get; init; } = [];
    public required Normalization Normalization { get; init; }
    public required IReadOnlyList<string> ClassNames { get; init; }
    public int ImageHeight { get; init; }
    public int ImageWidth { get; init; }
    public int BatchSize { get; init; }
    public int Seed { get; init; }
}

/// <summary>
/// A single-file checkpoint: header, JSON state, the model's state_dict, the optimizer's momentum buffers and (version 2)
/// the moving average of the weights when the run keeps one.
/// Written to a temporary file and renamed over the old one, so a crash or a full disk mid-write leaves the
/// last good checkpoint intact.
/// </summary>
internal static class Checkpoint
{
    private static readonly byte[] Magic = "RESNETCK"u8.ToArray();
    private const int Version = 2; // 2 added the averaged weights; version 1 files (without them) still resume
    private static readonly JsonSerializerOptions Json = new(ModelCard.Json) { WriteIndented = false, NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };

    public static void Save(string path, CheckpointState state, nn.Module model, IReadOnlyList<Tensor?> momentum, nn.Module? averaged = null)
    {
        string full = Path.GetFullPath(path);
        using var scope = NewDisposeScope(); // the cpu() views made while writing
        try
        {
            AtomicFile.WriteStream(full, stream =>
            {
                using var writer = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true);
                writer.Write(Magic);
                writer.Write(Version);
                writer.Write(JsonSerializer.Serialize(state, Json));
                var dict = model.state_dict();
                writer.Write(dict.Count);
                foreach (var (key, tensor) in dict)
                {
                    writer.Write(key);
                    tensor.cpu().Save(writer);
                }
                writer.Write(momentum.Count);
                foreach (var m in momentum)
                {
                    writer.Write(m is not null);
                    m?.cpu().Save(writer);
                }
                var average = averaged?.state_dict();
                writer.Write(average?.Count ?? 0);
                foreach (var (key, tensor) in average ?? [])
                {
                    writer.Write(key);
                    tensor.cpu().Save(writer);
                }
                writer.Flush();
            });
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"Could not write checkpoint '{full}' ({ex.Message}). Free disk space or choose another checkpoint folder; the previous checkpoint there is unchanged.", ex);
        }
    }

    /// <summary>Reads the state only (cheap), to check the architecture before touching the model.</summary>
    public static CheckpointState ReadState(string path)
    {
        using var reader = Open(path);
        return ReadHeaderAndVersion(reader, path).State;
    }

    /// <returns>The state, the weights, the momentum buffers, and the averaged weights (empty when the run kept none).</returns>
    public static (CheckpointState State, Dictionary<string, Tensor> Weights, List<Tensor?> Momentum, Dictionary<string, Tensor> Averaged) Read(string path)
    {
        using var reader = Open(path);
        var (state, version) = ReadHeaderAndVersion(reader, path);
        var weights = new Dictionary<string, Tensor>();
        var momentum = new List<Tensor?>();
        var averaged = new Dictionary<string, Tensor>();
        try
        {
            int n = reader.ReadInt32();
            for (int i = 0; i < n; i++)
            {
                string key = reader.ReadString();
                weights[key] = TensorExtensionMethods.Load(reader);
            }
            int m = reader.ReadInt32();
            for (int i = 0; i < m; i++)
                momentum.Add(reader.ReadBoolean() ? TensorExtensionMethods.Load(reader) : null);
            int a = version >= 2 ? reader.ReadInt32() : 0;
            for (int i = 0; i < a; i++)
            {
                string key = reader.ReadString();
                averaged[key] = TensorExtensionMethods.Load(reader);
            }
            return (state, weights, momentum, averaged);
        }
        catch (Exception ex) when (ex is EndOfStreamException or IOException or System.Runtime.InteropServices.ExternalException or ArgumentException)
        {
            // A checkpoint cut short (full disk, copy interrupted) fails inside the tensor reader: say which file.
            foreach (var t in weights.Values) t.Dispose();
            foreach (var t in momentum) t?.Dispose();
            foreach (var t in averaged.Values) t.Dispose();
            throw new CorruptDataException($"Checkpoint '{path}' is truncated or damaged ({ex.Message}). Delete it to start over, or resume from a complete copy.", path, ex);
        }
    }

    private static BinaryReader Open(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Checkpoint '{path}' does not exist.", path);
        return new BinaryReader(File.OpenRead(path), Encoding.UTF8);
    }

    private static (CheckpointState State, int Version) ReadHeaderAndVersion(BinaryReader reader, string path)
    {
        try
        {
            byte[] magic = reader.ReadBytes(Magic.Length);
            if (!magic.AsSpan().SequenceEqual(Magic))
                throw new CorruptDataException($"'{path}' is not a ResNet.Trainer checkpoint (written by ResNetTrainer.Train as last.ckpt). To load plain weights use ResNetWeights.Load.", path);
            int version = reader.ReadInt32();
            if (version is < 1 or > Version)
                throw new CorruptDataException($"Checkpoint '{path}' has format version {version}; this build reads versions 1 to {Version}.", path);
            var state = JsonSerializer.Deserialize<CheckpointState>(reader.ReadString(), Json)
                ?? throw new CorruptDataException($"Checkpoint '{path}' has an empty state.", path);
            return (state, version);
        }
        catch (Exception ex) when (ex is EndOfStreamException or JsonException)
        {
            throw new CorruptDataException($"Checkpoint '{path}' is damaged ({ex.Message}). Delete it to start over.", path, ex);
        }
    }

    public static string SpecJson(Models.ResNetSpec spec) => Models.ResNetSpecJson.ToJson(spec);
}

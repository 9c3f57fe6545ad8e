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
    public List<EpochStats> History { get; init; } = [];
    public required Normalization Normalization { get; init; }
    public required IReadOnlyList<string> ClassNames { get; init; }
    public int ImageHeight { get; init; }
    public int ImageWidth { get; init; }
    public int BatchSize { get; init; }
    public int Seed { get; init; }
}

/// <summary>
/// A single-file checkpoint: header, JSON state, the model's state_dict and the optimizer's momentum buffers.
/// Written to a temporary file and renamed over the old one, so a crash or a full disk mid-write leaves the
/// last good checkpoint intact.
/// </summary>
internal static class Checkpoint
{
    private static readonly byte[] Magic = "RESNETCK"u8.ToArray();
    private const int Version = 1;
    private static readonly JsonSerializerOptions Json = new(ModelCard.Json) { WriteIndented = false, NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };

    public static void Save(string path, CheckpointState state, nn.Module model, IReadOnlyList<Tensor?> momentum)
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
                writer.Flush();
            });
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"Could not write checkpoint '{full}' ({ex.Message}). Free disk space or choose another --checkpoint-dir; the previous checkpoint there is unchanged.", ex);
        }
    }

    /// <summary>Reads the state only (cheap), to check the architecture before touching the model.</summary>
    public static CheckpointState ReadState(string path)
    {
        using var reader = Open(path);
        return ReadHeader(reader, path);
    }

    public static (CheckpointState State, Dictionary<string, Tensor> Weights, List<Tensor?> Momentum) Read(string path)
    {
        using var reader = Open(path);
        var state = ReadHeader(reader, path);
        var weights = new Dictionary<string, Tensor>();
        int n = reader.ReadInt32();
        for (int i = 0; i < n; i++)
        {
            string key = reader.ReadString();
            weights[key] = TensorExtensionMethods.Load(reader);
        }
        int m = reader.ReadInt32();
        var momentum = new List<Tensor?>(m);
        for (int i = 0; i < m; i++)
            momentum.Add(reader.ReadBoolean() ? TensorExtensionMethods.Load(reader) : null);
        return (state, weights, momentum);
    }

    private static BinaryReader Open(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Checkpoint '{path}' does not exist.", path);
        return new BinaryReader(File.OpenRead(path), Encoding.UTF8);
    }

    private static CheckpointState ReadHeader(BinaryReader reader, string path)
    {
        try
        {
            byte[] magic = reader.ReadBytes(Magic.Length);
            if (!magic.AsSpan().SequenceEqual(Magic))
                throw new CorruptDataException($"'{path}' is not a ResNet.Trainer checkpoint (written by Trainer.Train as last.ckpt). To load plain weights use ResNetWeights.Load.", path);
            int version = reader.ReadInt32();
            if (version != Version)
                throw new CorruptDataException($"Checkpoint '{path}' has format version {version}; this build reads version {Version}.", path);
            return JsonSerializer.Deserialize<CheckpointState>(reader.ReadString(), Json)
                ?? throw new CorruptDataException($"Checkpoint '{path}' has an empty state.", path);
        }
        catch (Exception ex) when (ex is EndOfStreamException or JsonException)
        {
            throw new CorruptDataException($"Checkpoint '{path}' is damaged ({ex.Message}). Delete it to start over.", path, ex);
        }
    }

    public static string SpecJson(Models.ResNetSpec spec) => Models.ResNetSpecJson.ToJson(spec);
}

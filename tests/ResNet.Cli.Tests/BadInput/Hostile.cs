using System.Security.Cryptography;
using ResNet.Trainer.Data;

namespace ResNet.Cli.Tests.BadInput;

/// <summary>
/// What the hostile inputs work on: a small real image folder (Fashion-MNIST PNGs), and a user's folder holding a
/// trained model (model.dat/json/onnx), its checkpoint and metrics, whose bytes no bad input may change.
/// </summary>
public sealed class Hostile
{
    public string Root { get; } = Directory.CreateTempSubdirectory("resnet-hostile-").FullName;

    /// <summary>train/ (5 classes x 6 images) and test/ (5 x 2), 28x28 gray.</summary>
    public string Data => Path.Combine(Root, "data");
    public string Train => Path.Combine(Data, "train");

    /// <summary>The user's completed run: resnet8, one epoch.</summary>
    public string User => Path.Combine(Root, "user");
    public string ModelDat => Path.Combine(User, "model.dat");
    public string ModelOnnx => Path.Combine(User, "model.onnx");
    public string Checkpoint => Path.Combine(User, "checkpoints", "last.ckpt");

    public static readonly Lazy<Hostile> Shared = new(() => new Hostile());

    private Hostile()
    {
        var train = InMemoryImages.From(DatasetSplit.Balanced(Idx.LoadSplit("/usr/share/datasets/fashion-mnist", train: true), 6));
        var test = InMemoryImages.From(DatasetSplit.Balanced(Idx.LoadSplit("/usr/share/datasets/fashion-mnist", train: false), 2));
        for (int i = 0; i < train.Count; i++)
            if (train.LabelOf(i) < 5) ImageDecoder.SavePng(train.Load(i), Path.Combine(Train, train.ClassNames[train.LabelOf(i)], $"{i:D3}.png"));
        for (int i = 0; i < test.Count; i++)
            if (test.LabelOf(i) < 5) ImageDecoder.SavePng(test.Load(i), Path.Combine(Data, "test", test.ClassNames[test.LabelOf(i)], $"{i:D3}.png"));
        var (code, _, err) = Cli.Run("train", "--data", Train, "--output", User, "--arch", "resnet8", "--epochs", "1", "--batch-size", "10", "--seed", "1");
        if (code != 0) throw new InvalidOperationException("fixture training failed: " + err);
    }

    /// <summary>A new empty folder under the root.</summary>
    public string Fresh(string name)
    {
        string dir = Path.Combine(Root, "cases", name + "-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        return dir;
    }

    /// <summary>A copy of the training folder (to spoil without touching the shared one).</summary>
    public string CopyOfTrain(string name)
    {
        string dir = Fresh(name);
        foreach (var file in Directory.EnumerateFiles(Train, "*", SearchOption.AllDirectories))
        {
            string to = Path.Combine(dir, Path.GetRelativePath(Train, file));
            Directory.CreateDirectory(Path.GetDirectoryName(to)!);
            File.Copy(file, to);
        }
        return dir;
    }

    /// <summary>A copy of <paramref name="file"/> cut to <paramref name="keep"/> of its bytes, at <paramref name="to"/>.</summary>
    public static string Truncated(string file, string to, double keep = 0.5)
    {
        byte[] bytes = File.ReadAllBytes(file);
        Directory.CreateDirectory(Path.GetDirectoryName(to)!);
        File.WriteAllBytes(to, bytes[..(int)(bytes.Length * keep)]);
        return to;
    }

    /// <summary>SHA-256 of every file under the user's folder, by relative path.</summary>
    public Dictionary<string, string> UserFiles() =>
        Directory.EnumerateFiles(User, "*", SearchOption.AllDirectories)
            .ToDictionary(f => Path.GetRelativePath(User, f), f => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(f))));
}

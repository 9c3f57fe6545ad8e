using System.Text.RegularExpressions;
using ResNet.Trainer.Data;

namespace ResNet.Trainer.Pretrained;

/// <summary>How a pretrained network's file is stored, and so how it is fetched and loaded.</summary>
public enum WeightsFormat
{
    /// <summary>A PyTorch <c>state_dict</c> with torchvision's keys, downloaded on first use and cached.</summary>
    TorchvisionStateDict,
    /// <summary>The CNTK ResNet18 trunk of NuGet <c>Microsoft.ML.DnnImageFeaturizer.ResNet18</c> (ONNX), copied into the build output by that package.</summary>
    DnnImageFeaturizerOnnx,
}

/// <summary>
/// One entry of the pretrained catalog (<see cref="ResNetPretrained"/>): which network, where its file comes from, how
/// its inputs were prepared when it was evaluated, and what it scored.
/// </summary>
/// <param name="Architecture">The architecture name <see cref="Models.ResNetSpec.Parse"/> builds (<c>resnet50</c>).</param>
/// <param name="Tag">The weights' name within the architecture (torchvision's enum member, e.g. <c>IMAGENET1K_V2</c>).</param>
/// <param name="Format">How the file is stored and loaded.</param>
/// <param name="Url">The official address of the file; its last path segment is <see cref="FileName"/>. Null for files a NuGet package ships.</param>
/// <param name="Transform">The evaluation preprocessing of the published figures; null for the CNTK trunk, which ML.NET stretches to 224x224.</param>
/// <param name="Top1">Published ImageNet-1K validation top-1 accuracy in percent (single 224 crop), when published.</param>
/// <param name="Top5">Published top-5 accuracy in percent, when published.</param>
/// <param name="Parameters">Number of parameters: with the 1000-class ImageNet head for torchvision's files, the trunk alone for a featurizer trunk.</param>
/// <param name="License">The licence terms as their publisher states them.</param>
/// <param name="Source">Where the facts of this entry were read.</param>
public sealed record PretrainedWeights(
    string Architecture, string Tag, WeightsFormat Format, Uri? Url, ResizeCropTransform? Transform,
    double? Top1, double? Top5, long Parameters, string License, string Source)
{
    // torch.hub's HASH_REGEX (torch/hub.py): the first "-<hex>." in the file name holds the start of its SHA-256.
    private static readonly Regex HashInName = new("-([a-f0-9]*)\\.", RegexOptions.CultureInvariant);

    /// <summary><c>architecture:TAG</c>, the name <see cref="ResNetPretrained.Parse"/> reads back.</summary>
    public string Name => $"{Architecture}:{Tag}";

    /// <summary>The file's name: the last segment of <see cref="Url"/> (as torch.hub names its cached files).</summary>
    public string FileName => Url is null ? $"{Architecture}.onnx" : Path.GetFileName(Url.AbsolutePath);

    /// <summary>
    /// The start of the file's SHA-256 in lower-case hex, read from <see cref="FileName"/> as torch.hub's <c>check_hash</c>
    /// reads it; null when the name carries none.
    /// </summary>
    public string? Sha256Prefix => Url is null ? null : HashInName.Match(FileName) is { Success: true } m ? m.Groups[1].Value : null;

    /// <summary>The name.</summary>
    public override string ToString() => Name;

    /// <summary>
    /// The catalog entry named <paramref name="name"/> (<see cref="ResNetPretrained.Parse"/>), so an option typed
    /// <see cref="PretrainedWeights"/> also takes a name: <c>PretrainedModel = "resnet50"</c>.
    /// </summary>
    /// <exception cref="ArgumentException">No entry has that name; the message lists the names there are.</exception>
    public static implicit operator PretrainedWeights(string name) => ResNetPretrained.Parse(name);

    /// <summary>The catalog entry named <paramref name="name"/>; see the implicit conversion.</summary>
    public static PretrainedWeights FromName(string name) => ResNetPretrained.Parse(name);
}

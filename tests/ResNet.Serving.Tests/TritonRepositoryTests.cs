using System.Text.RegularExpressions;

namespace ResNet.Serving.Tests;

/// <summary>The Triton model repository against Triton's documented rules for the ONNX Runtime backend.</summary>
public sealed class TritonRepositoryTests
{
    [Fact]
    public void ExportTriton_WritesTheLayoutAndConfigTritonExpects()
    {
        string repo = Cli.TempDir();
        string output = Cli.Run("serve", "--model", ServingFixture.ModelPath, "--write-triton", repo, "--max-batch", "16");
        Assert.Contains("wrote", output, StringComparison.Ordinal);

        // <repository>/<model-name>/config.pbtxt, <model-name>/<version>/model.onnx (numeric version folder), the label file.
        string model = Path.Combine(repo, "model");
        Assert.Equal(["model"], Directory.GetDirectories(repo).Select(Path.GetFileName));
        Assert.Equal(["1"], Directory.GetDirectories(model).Select(Path.GetFileName));
        Assert.Equal(File.ReadAllBytes(ServingFixture.ModelPath), File.ReadAllBytes(Path.Combine(model, "1", "model.onnx")));
        using var scorer = new OnnxScorer(ServingFixture.ModelPath);
        Assert.Equal(scorer.Info.ClassNames, File.ReadAllLines(Path.Combine(model, "labels.txt")));

        string config = File.ReadAllText(Path.Combine(model, "config.pbtxt"));
        Assert.Contains("name: \"model\"\n", config, StringComparison.Ordinal);          // must match the folder name
        Assert.Contains("platform: \"onnxruntime_onnx\"\n", config, StringComparison.Ordinal);
        Assert.Contains("max_batch_size: 16\n", config, StringComparison.Ordinal);
        Assert.Contains("dynamic_batching { }", config, StringComparison.Ordinal);
        // With max_batch_size > 0 the dims leave out the batch dimension.
        Assert.Matches(new Regex(@"name: ""input""\s+data_type: TYPE_FP32\s+dims: \[ 1, 28, 28 \]"), config);
        Assert.Matches(new Regex(@"name: ""probabilities""\s+data_type: TYPE_FP32\s+dims: \[ 10 \]\s+label_filename: ""labels.txt"""), config);
        Assert.Matches(new Regex(@"name: ""features""\s+data_type: TYPE_FP32\s+dims: \[ 64 \]\s+\}"), config);
        // The last stage's activations (resnet train exports them): ResNet-20 at 28x28 ends at 64 channels of 7x7.
        Assert.Equal(new ActivationShape(64, 7, 7), scorer.ActivationShape);
        Assert.Matches(new Regex(@"name: ""activations""\s+data_type: TYPE_FP32\s+dims: \[ 64, 7, 7 \]\s+\}"), config);
        // Every graph output is listed, each once.
        var listed = Regex.Matches(config, @"name: ""(\w+)""\s+data_type").Select(m => m.Groups[1].Value).Skip(1).Order().ToArray();
        Assert.Equal(global::Onnx.ModelProto.Parser.ParseFrom(File.ReadAllBytes(ServingFixture.ModelPath)).Graph.Output.Select(o => o.Name).Order(), listed);
        // Balanced braces and brackets: the text parses as a protobuf message.
        Assert.Equal(config.Count(c => c == '{'), config.Count(c => c == '}'));
        Assert.Equal(config.Count(c => c == '['), config.Count(c => c == ']'));
    }
}

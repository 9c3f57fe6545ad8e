#:project ../../src/ResNet.MLNet/ResNet.MLNet.csproj
#:package Microsoft.ML.OnnxRuntime
#:property PublishAot=false
// Trains a small ResNet-20 on the embedded sample (1 epoch) and saves the ML.NET model zip that ScoringApp loads.
// Usage: dotnet run make-model.cs -- <output.zip>
using Microsoft.ML;
using ResNet.MLNet;
using ResNet.MLNet.Transforms;

string output = args.Length > 0 ? args[0] : "model.zip";
var ml = new MLContext(seed: 1);
var train = ml.Data.LoadImagesFromDirectory(Path.Combine(AppContext.GetData("EntryPointFileDirectoryPath") as string ?? ".", "..", "data", "fashion-mnist-small", "train"));
var model = ml.Transforms.LoadImages("Image", null, "ImagePath")
    .Append(ml.Transforms.Conversion.MapValueToKey("Label"))
    .Append(ml.Transforms.ResNetClassifier(new ResNetClassifierEstimator.Options { Architecture = "resnet20", Channels = 1, ImageSize = 28, Epochs = 1 }))
    .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedClass", "PredictedLabel"))
    .Fit(train);
ml.Model.Save(model, train.Schema, output);
Console.WriteLine($"saved {output}");

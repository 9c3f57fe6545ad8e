using System.CommandLine;
using ResNet.Cli.Reporting;

namespace ResNet.Cli.Commands;

/// <summary><c>resnet demo</c>: trains a CIFAR-style ResNet on the embedded Fashion-MNIST sample and reports test accuracy.</summary>
internal static class DemoCommand
{
    public static Command Create(TextWriter output)
    {
        var data = new Option<string?>("--data") { Description = "Image folder with train/ and test/ (default: samples/data/fashion-mnist-small, found from the current or the program's folder)." };
        var outDir = new Option<string>("--output") { Description = "Folder for the model, metrics and plots.", DefaultValueFactory = _ => "resnet-demo" };
        var o = new TrainCommand.Options();
        var cmd = new Command("demo", "Train ResNet-20 on the embedded Fashion-MNIST sample (10 classes x 100 images), test on 300 held-out images, save the model; a few minutes on 2 CPU cores.") { data, outDir };
        foreach (var option in o.All) cmd.Options.Add(option);
        cmd.SetAction((parse, ct) =>
        {
            string? path = parse.GetValue(data) ?? DataLocator.FindSamples();
            if (path is null)
            {
                parse.InvocationConfiguration.Error.WriteLine(
                    "error: the embedded dataset samples/data/fashion-mnist-small was not found above the current folder or the program's folder. " +
                    "Run the demo from the repository, or pass --data <folder with train/ and test/>.");
                return Task.FromResult(2);
            }
            // The demo's defaults: 15 epochs at batch 64 (1000 images make 15 iterations per epoch); the user's flags win.
            return Task.FromResult(TrainCommand.Session.Run(parse, o, path, null, parse.GetValue(outDir)!,
                t => t with { Epochs = t.Epochs ?? (t.Iterations is null ? 15 : null), BatchSize = t.BatchSize ?? 64 }, output, ct));
        });
        return cmd;
    }
}

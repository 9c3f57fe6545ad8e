using System.Diagnostics;
using System.Net.Http.Headers;
using ResNet.Serving;

namespace ResNet.Serving.Tests;

/// <summary>Runs the real <c>resnet</c> CLI (built beside this project) as a process.</summary>
public static class Cli
{
    public static string RepoRoot { get; } = FindRoot();

    private static string FindRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "ResNetMLNet.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("The tests run inside the repository; ResNetMLNet.sln was not found above " + AppContext.BaseDirectory);
    }

    /// <summary>resnet.dll of the same configuration as these tests.</summary>
    public static string Dll
    {
        get
        {
            string config = AppContext.BaseDirectory.Contains("/Debug/", StringComparison.Ordinal) ? "Debug" : "Release";
            return Path.Combine(RepoRoot, "src", "ResNet.Cli", "bin", config, "net10.0", "resnet.dll");
        }
    }

    public static ProcessStartInfo Start(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        return psi;
    }

    public static string Run(params string[] args)
    {
        using var p = Process.Start(Start(args))!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        string stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"resnet {string.Join(' ', args)} failed ({p.ExitCode}): {stderr}{stdout.Result}");
        return stdout.Result;
    }

    public static string TempDir()
    {
        string dir = Path.Combine(Path.GetTempPath(), "resnet-serve-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }

    public static string SampleImage(string cls = "Sneaker", int i = 0) =>
        Directory.GetFiles(Path.Combine(RepoRoot, "samples", "data", "fashion-mnist-small", "test", cls), "*.png").Order(StringComparer.Ordinal).ElementAt(i);
}

/// <summary>
/// A small trained model (ResNet-20 on the embedded Fashion-MNIST sample, one epoch, by the real CLI) and an
/// in-process server on a free loopback port, shared by the tests of one class.
/// </summary>
public sealed class ServingFixture : IAsyncLifetime
{
    private static readonly Lazy<string> TrainedModel = new(() =>
    {
        string dir = Cli.TempDir();
        Cli.Run("train", "--data", Path.Combine(Cli.RepoRoot, "samples", "data", "fashion-mnist-small", "train"),
            "--arch", "resnet20", "--epochs", "1", "--seed", "1", "--output", dir);
        return Path.Combine(dir, "model.onnx");
    });

    /// <summary>The trained model's ONNX file (trained once per test run).</summary>
    public static string ModelPath => TrainedModel.Value;

    public ResNetServer Server { get; private set; } = null!;
    public HttpClient Http { get; private set; } = null!;

    /// <summary>Options of the shared server; small limits so the limit tests stay small.</summary>
    public static ServerOptions Options(params string[] models) => new()
    {
        Models = models,
        Port = 0,
        MaxRequestBytes = 256 * 1024,
        MaxImageSide = 1024,
        Threads = 1,
    };

    public async Task InitializeAsync()
    {
        Server = ResNetServer.Create(Options(ModelPath));
        await Server.StartAsync();
        Http = new HttpClient { BaseAddress = new Uri(Server.Address) };
    }

    public async Task DisposeAsync()
    {
        Http.Dispose();
        await Server.DisposeAsync();
    }

    public static ByteArrayContent Bytes(byte[] data, string type = "application/octet-stream")
    {
        var c = new ByteArrayContent(data);
        c.Headers.ContentType = new MediaTypeHeaderValue(type);
        return c;
    }
}

using System.Diagnostics;
using System.Net;
using System.Text.RegularExpressions;

namespace ResNet.Serving.Tests;

/// <summary>`resnet serve` as a real process: overload, graceful shutdown on SIGTERM, no libtorch.</summary>
public sealed partial class ProcessTests
{
    [Fact]
    public async Task FullQueue_Answers503WithRetryAfter_AndTheRestSucceed()
    {
        // One image may wait, and a batch waits a second for company: requests behind it find the queue full.
        await using var server = ResNetServer.Create(new ServerOptions
        {
            Models = [ServingFixture.ModelPath], Port = 0, MaxQueuedImages = 1, MaxQueueDelay = TimeSpan.FromSeconds(1), Threads = 1,
        });
        await server.StartAsync();
        using var http = new HttpClient { BaseAddress = new Uri(server.Address) };
        byte[] png = File.ReadAllBytes(Cli.SampleImage());
        var responses = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => http.PostAsync("/v1/models/model/predict", ServingFixture.Bytes(png, "image/png"))));
        var busy = responses.Where(r => r.StatusCode == HttpStatusCode.ServiceUnavailable).ToList();
        Assert.NotEmpty(busy);
        Assert.Contains(responses, r => r.StatusCode == HttpStatusCode.OK);
        Assert.All(responses, r => Assert.True(r.StatusCode is HttpStatusCode.OK or HttpStatusCode.ServiceUnavailable, r.StatusCode.ToString()));
        Assert.Equal("1", busy[0].Headers.RetryAfter!.Delta!.Value.TotalSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Contains("queue is full", await busy[0].Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Sigterm_FinishesInFlightRequests_ExitsZero_AndNeverLoadedLibtorch()
    {
        // Requests wait in the batching queue for 2 s, so they are surely in flight when SIGTERM arrives.
        using var p = Process.Start(Cli.Start("serve", "--model", ServingFixture.ModelPath, "--port", "0", "--max-queue-delay-ms", "2000", "--threads", "1"))!;
        string? address = null;
        while (address is null && await p.StandardOutput.ReadLineAsync() is { } line)
            if (AddressPattern().Match(line) is { Success: true } m) address = m.Value;
        Assert.NotNull(address);
        using var http = new HttpClient { BaseAddress = new Uri(address) };
        byte[] png = File.ReadAllBytes(Cli.SampleImage());
        var inflight = Enumerable.Range(0, 12).Select(_ => http.PostAsync("/v1/models/model/predict", ServingFixture.Bytes(png, "image/png"))).ToArray();
        while (!(await http.GetStringAsync("/metrics")).Contains("resnet_queued_images{model=\"model\"} 12", StringComparison.Ordinal))
            await Task.Delay(20);

        string maps = await File.ReadAllTextAsync($"/proc/{p.Id}/maps");
        Assert.Contains("libonnxruntime", maps, StringComparison.Ordinal);
        Assert.DoesNotContain("libtorch", maps, StringComparison.Ordinal);
        Assert.DoesNotContain("LibTorchSharp", maps, StringComparison.Ordinal);

        Assert.Equal(0, Kill(p.Id, 15));
        var responses = await Task.WhenAll(inflight);
        Assert.All(responses, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        await p.WaitForExitAsync();
        Assert.Equal(0, p.ExitCode);
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill")]
    private static extern int Kill(int pid, int signal);

    [GeneratedRegex(@"http://127\.0\.0\.1:\d+")]
    private static partial Regex AddressPattern();
}

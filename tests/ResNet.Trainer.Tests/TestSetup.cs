using System.Runtime.CompilerServices;

namespace ResNet.Trainer.Tests;

internal static class TestSetup
{
    // Test classes run in parallel; one may call TorchSharp directly before any ResNet.Trainer type is touched.
    [ModuleInitializer]
    internal static void LoadTorch() => TorchNative.EnsureReady();
}

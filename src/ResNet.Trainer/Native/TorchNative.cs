using TorchSharp;

namespace ResNet.Trainer;

/// <summary>Entry point that makes sure TorchSharp's native backend is usable before any model is built.</summary>
public static class TorchNative
{
    private static readonly Lazy<Exception?> Ready = new(() =>
    {
        Native.TorchNativeSetup.EnsurePatched();
        try
        {
            torch.InitializeDeviceType(DeviceType.CPU);
            return null;
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            return ex;
        }
    });

    /// <summary>
    /// Loads TorchSharp's native backend once (patching it first where the system libstdc++ needs it).
    /// </summary>
    /// <exception cref="InvalidOperationException">The backend could not be loaded; the message says what was tried.</exception>
    public static void EnsureReady()
    {
        if (Ready.Value is { } error)
            throw new InvalidOperationException(
                "TorchSharp's native library could not be loaded. Setup log: " +
                string.Join("; ", Native.TorchNativeSetup.Log) + ". Cause: " + error.Message, error);
    }
}

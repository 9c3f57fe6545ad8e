using System.Runtime.InteropServices;
using TorchSharp;

namespace ResNet.Trainer;

/// <summary>Entry point that makes sure TorchSharp's native backend is usable before any model is built.</summary>
public static class TorchNative
{
    private static readonly Lazy<Exception?> Ready = new(() =>
    {
        Native.TorchNativeSetup.EnsurePatched();
        // Processes that build TorchSharp models get the allocator settings; ONNX-only scoring keeps glibc's defaults.
        Native.TorchNativeSetup.TuneAllocator();
        try
        {
            torch.InitializeDeviceType(DeviceType.CPU);
            NnpackSwitch.TryDisable();
            return null;
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            return ex;
        }
    });

    /// <summary>
    /// What the native setup did in this process (which library was patched, where it was loaded from, allocator
    /// settings): the one diagnostic to look at when TorchSharp does not load.
    /// </summary>
    public static IReadOnlyList<string> SetupLog => Native.TorchNativeSetup.Log;

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

/// <summary>
/// libtorch 2.10 tries NNPACK on every CPU convolution and, on CPUs NNPACK does not support, prints
/// "Could not initialize NNPACK" each time; TorchSharp has no switch, so it is turned off in libtorch itself.
/// </summary>
internal static class NnpackSwitch
{
    [DllImport("libtorch_cpu", EntryPoint = "_ZN2at13globalContextEv")]
    private static extern IntPtr GlobalContext();

    [DllImport("libtorch_cpu", EntryPoint = "_ZN2at7Context20setUserEnabledNNPACKEb")]
    private static extern void SetUserEnabledNnpack(IntPtr context, [MarshalAs(UnmanagedType.U1)] bool enabled);

    /// <summary>Turns NNPACK off; false where the libtorch symbols are not found (another platform or ABI).</summary>
    public static bool TryDisable()
    {
        if (!RuntimeInformation.IsOSPlatform(OSPlatform.Linux)) return false;
        try { SetUserEnabledNnpack(GlobalContext(), false); return true; }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException) { return false; }
    }
}

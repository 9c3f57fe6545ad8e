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
            LibtorchSwitches.TryDisableNnpack();
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
/// Switches in libtorch's global context that TorchSharp 0.107 does not expose, reached through libtorch's exported C++
/// symbols (Linux x64 builds; elsewhere the calls report false and change nothing).
/// </summary>
internal static class LibtorchSwitches
{
    [DllImport("libtorch_cpu", EntryPoint = "_ZN2at13globalContextEv")]
    private static extern IntPtr GlobalContext();

    [DllImport("libtorch_cpu", EntryPoint = "_ZN2at7Context20setUserEnabledNNPACKEb")]
    private static extern void SetUserEnabledNnpack(IntPtr context, [MarshalAs(UnmanagedType.U1)] bool enabled);

    [DllImport("libtorch_cpu", EntryPoint = "_ZN2at7Context20setUserEnabledMkldnnEb")]
    private static extern void SetUserEnabledMkldnn(IntPtr context, [MarshalAs(UnmanagedType.U1)] bool enabled);

    [DllImport("libtorch_cpu", EntryPoint = "_ZNK2at7Context17userEnabledMkldnnEv")]
    [return: MarshalAs(UnmanagedType.U1)]
    private static extern bool UserEnabledMkldnn(IntPtr context);

    /// <summary>
    /// Turns NNPACK off. libtorch 2.10 tries NNPACK on every CPU convolution and, on CPUs NNPACK does not support, prints
    /// "Could not initialize NNPACK" each time.
    /// </summary>
    public static bool TryDisableNnpack() => Try(() => SetUserEnabledNnpack(GlobalContext(), false));

    /// <summary>Turns oneDNN (MKLDNN) off: convolutions, batch norm and pooling take libtorch's own CPU kernels.</summary>
    public static bool TryDisableOneDnn() => Try(() => SetUserEnabledMkldnn(GlobalContext(), false));

    /// <summary>Whether libtorch uses oneDNN (null where the switch cannot be read).</summary>
    public static bool? OneDnnEnabled
    {
        get
        {
            bool? answer = null;
            return Try(() => answer = UserEnabledMkldnn(GlobalContext())) ? answer : null;
        }
    }

    private static bool Try(Action call)
    {
        if (!RuntimeInformation.IsOSPlatform(OSPlatform.Linux)) return false;
        try { call(); return true; }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException) { return false; }
    }
}

using TorchSharp;

namespace ResNet.Trainer.Training;

/// <summary>Turns <c>cpu</c>, <c>cuda</c>, <c>cuda:N</c> or <c>auto</c> into a TorchSharp device.</summary>
public static class Devices
{
    /// <summary>Resolves a device name.</summary>
    /// <param name="name">cpu, cuda, cuda:N or auto.</param>
    /// <param name="log">Told when <c>auto</c> falls back to the CPU.</param>
    /// <exception cref="DeviceUnavailableException">CUDA was asked for but is not available, or N is out of range.</exception>
    /// <exception cref="ArgumentException">Not a device name.</exception>
    public static torch.Device Resolve(string name, Action<string>? log = null)
    {
        TorchNative.EnsureReady();
        string n = (name ?? "auto").Trim().ToLowerInvariant();
        if (n == "cpu") return torch.CPU;
        if (n == "auto")
        {
            if (torch.cuda.is_available()) return torch.CUDA;
            log?.Invoke("No CUDA device is available (this build uses the TorchSharp-cpu backend or no GPU is present); training on the CPU.");
            return torch.CPU;
        }
        if (n == "cuda" || n.StartsWith("cuda:", StringComparison.Ordinal))
        {
            if (!torch.cuda.is_available())
                throw new DeviceUnavailableException(
                    $"Device '{name}' was requested but CUDA is not available here. Choose the device \"cpu\" (or \"auto\", which falls back to the CPU), or build with " +
                    "-p:TorchSharpBackend=cuda-linux on a machine with an NVIDIA GPU and driver.");
            int index = 0;
            if (n.Length > 5 && !int.TryParse(n.AsSpan(5), out index))
                throw new ArgumentException($"'{name}' is not a device name. Use cpu, cuda, cuda:N or auto.", nameof(name));
            int count = torch.cuda.device_count();
            if (index < 0 || index >= count)
                throw new DeviceUnavailableException($"Device '{name}' does not exist: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}.");
            return torch.device(DeviceType.CUDA, index);
        }
        throw new ArgumentException($"'{name}' is not a device name. Use cpu, cuda, cuda:N or auto.", nameof(name));
    }
}

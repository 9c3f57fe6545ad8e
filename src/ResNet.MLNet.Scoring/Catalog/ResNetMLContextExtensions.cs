using Microsoft.ML;
using Microsoft.ML.Runtime;

namespace ResNet.MLNet;

/// <summary>Setup shared by every ResNet catalog method.</summary>
public static class ResNetMLContextExtensions
{
    /// <summary>
    /// Registers this assembly's custom mappings with <paramref name="mlContext"/> so models that use them can be
    /// saved and loaded. Every ResNet catalog method calls it; call it yourself before <c>mlContext.Model.Load</c>
    /// in a process that has not built a ResNet pipeline.
    /// </summary>
    public static MLContext RegisterResNet(this MLContext mlContext)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        mlContext.ComponentCatalog.RegisterAssembly(typeof(ResNetMLContextExtensions).Assembly);
        return mlContext;
    }

    internal static IHostEnvironment RegisterResNet(this IHostEnvironment env)
    {
        env.ComponentCatalog.RegisterAssembly(typeof(ResNetMLContextExtensions).Assembly);
        return env;
    }
}

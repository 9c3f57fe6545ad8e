using Microsoft.ML;
using ResNet.MLNet.Data;

namespace ResNet.MLNet;

/// <summary>ResNet.MLNet additions to <see cref="DataOperationsCatalog"/>.</summary>
public static class DataCatalogExtensions
{
    /// <summary>
    /// Loads an image folder as an <see cref="IDataView"/> with columns <c>ImagePath</c> (string) and <c>Label</c>
    /// (string: the subfolder's name). Follow with <c>Transforms.LoadImages("Image", null, "ImagePath")</c> and
    /// <c>Transforms.Conversion.MapValueToKey("Label")</c>.
    /// </summary>
    /// <param name="catalog">The data catalog.</param>
    /// <param name="folder">A folder with one subfolder of images per class.</param>
    /// <param name="useFolderNameAsLabel">Label each image with its class folder's name; false lists every image in the folder, unlabelled.</param>
    /// <exception cref="ImageFolderException">The folder is missing or has no images, or a class folder is empty.</exception>
    public static IDataView LoadImagesFromDirectory(this DataOperationsCatalog catalog, string folder, bool useFolderNameAsLabel = true)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return catalog.LoadFromEnumerable(ImageFolderLoader.List(folder, useFolderNameAsLabel));
    }
}

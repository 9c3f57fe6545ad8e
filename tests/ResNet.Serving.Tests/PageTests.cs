using OpenQA.Selenium;
using OpenQA.Selenium.Chrome;
using OpenQA.Selenium.Support.UI;

namespace ResNet.Serving.Tests;

/// <summary>The page at / in Debian's headless chromium, driven by Selenium (nothing downloads a browser).</summary>
public sealed class PageTests(ServingFixture f) : IClassFixture<ServingFixture>
{
    [Fact]
    public void UploadingAnImage_ShowsTheScorersTopClassAsTheFirstBar()
    {
        string image = Cli.SampleImage("Trouser");
        using var scorer = new OnnxScorer(ServingFixture.ModelPath);
        var expected = scorer.TopK(scorer.Score(ImageTensors.Load(image, scorer.Info.Channels, scorer.Info.Height, scorer.Info.Width, scorer.Info.Normalization.Range), 1), 0, 5);

        var service = ChromeDriverService.CreateDefaultService(Path.GetDirectoryName(ChromeDriver)!, Path.GetFileName(ChromeDriver));
        service.HideCommandPromptWindow = true;
        var options = new ChromeOptions { BinaryLocation = "/usr/bin/chromium" };
        options.AddArguments("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage");
        using var driver = new ChromeDriver(service, options);
        driver.Navigate().GoToUrl(f.Server.Address + "/");
        var wait = new WebDriverWait(driver, TimeSpan.FromMinutes(2));
        wait.Until(d => d.FindElement(By.Id("input")).Text.Length > 0);
        Assert.Equal("input 1 x 28 x 28, 10 classes", driver.FindElement(By.Id("input")).Text);

        driver.FindElement(By.Id("file")).SendKeys(image);
        wait.Until(d => d.FindElements(By.CssSelector(".top-class")).Count == 5);
        var labels = driver.FindElements(By.CssSelector(".top-class .label")).Select(e => e.Text).ToArray();
        Assert.Equal(expected.Select(e => e.Label), labels);
        Assert.Equal($"{expected[0].Probability * 100:F1}%", driver.FindElements(By.CssSelector(".top-class .pct"))[0].Text);
        Assert.Equal("", driver.FindElement(By.Id("error")).Text);
    }

    private static string ChromeDriver => Environment.GetEnvironmentVariable("RESNET_CHROMEDRIVER") ?? "/usr/bin/chromedriver";
}

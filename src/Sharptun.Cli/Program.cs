namespace Sharptun.Cli;

internal static class Program
{
    public static int Main(string[] args)
    {
        Console.Error.WriteLine("sharptun: not yet implemented");
        return 1;
    }
}

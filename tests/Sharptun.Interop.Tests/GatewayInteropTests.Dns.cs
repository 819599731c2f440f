using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Sharptun.Interop.Tests;

/// <summary>
/// The gateway's DNS responder with a real client: dig (bind9-dnsutils) in C, through wireguard-go, to the gateway's
/// tunnel address; G's host resolver reads a hosts file with names of many addresses (answers past 512 and 1232 octets),
/// and G's nameserver (its resolv.conf) is a dnsmasq in S that serves MX and TXT records the gateway forwards.
/// </summary>
public sealed partial class GatewayInteropTests
{
    [InteropFact("wireguard-go", "wg", "setpriv", "dig")]
    public void UnprivilegedGateway_Dns_Edns0AnswerOver512ByUdp_TruncatedFallsBackToTcp_WithDig()
    {
        var hosts = new StringBuilder();
        for (var i = 1; i <= 40; i++)
        {
            hosts.Append(CultureInfo.InvariantCulture, $"198.51.100.{i} many.dns.test\n");
        }

        for (var i = 1; i <= 60; i++)
        {
            hosts.Append(CultureInfo.InvariantCulture, $"2001:db8::{i:x} many.dns.test\n");
        }

        using var lab = new NetnsLab();
        using var setup = new Setup(lab, "", hosts.ToString(), ["--mx-host=mx.far.test,mail.far.test,10", "--txt-record=txt.far.test,sharptun through the gateway"]);
        try
        {
            var server = "@" + setup.GatewayTunnelAddress;

            // 40 A records: 12 + 18 + 40 * 16 + 11 = 681 octets, over UDP because dig offers 1232 (its default)
            var a = Dig(lab, setup, server, "many.dns.test", "A");
            Assert.Contains("status: NOERROR", a, StringComparison.Ordinal);
            Assert.Contains("ANSWER: 40,", a, StringComparison.Ordinal);
            Assert.Contains("; EDNS: version: 0, flags:; udp: 1232", a, StringComparison.Ordinal); // the gateway's OPT
            Assert.Contains("(UDP)", a, StringComparison.Ordinal);
            Assert.DoesNotContain("Truncated", a, StringComparison.Ordinal);
            Assert.InRange(MessageSize(a), 513, 1232);
            Assert.Contains("198.51.100.40", a, StringComparison.Ordinal);

            // 60 AAAA records (> 1232 octets): TC over UDP, dig asks again over TCP and gets all of them
            var aaaa = Dig(lab, setup, server, "many.dns.test", "AAAA");
            Assert.Contains("Truncated, retrying in TCP mode", aaaa, StringComparison.Ordinal);
            Assert.Contains("ANSWER: 60,", aaaa, StringComparison.Ordinal);
            Assert.Contains("(TCP)", aaaa, StringComparison.Ordinal);
            Assert.Contains("2001:db8::3c", aaaa, StringComparison.Ordinal);

            // without EDNS the UDP limit is 512 (RFC 1035 §4.2.1): truncated, then TCP; and no OPT comes back
            var plain = Dig(lab, setup, server, "+noedns", "many.dns.test", "A");
            Assert.Contains("Truncated, retrying in TCP mode", plain, StringComparison.Ordinal);
            Assert.Contains("ANSWER: 40,", plain, StringComparison.Ordinal);
            Assert.DoesNotContain("EDNS:", plain, StringComparison.Ordinal);

            // a smaller offer is honoured: 600 octets do not hold 40 A records
            var small = Dig(lab, setup, server, "+bufsize=600", "many.dns.test", "A");
            Assert.Contains("Truncated, retrying in TCP mode", small, StringComparison.Ordinal);
            Assert.Contains("ANSWER: 40,", small, StringComparison.Ordinal);

            // several queries on one TCP connection (+keepopen), and a name G's resolver does not know
            var tcp = Dig(lab, setup, server, "+tcp", "+keepopen", "many.dns.test", "AAAA", "many.dns.test", "A", "no-such.dns.test", "A");
            Assert.Contains("ANSWER: 60,", tcp, StringComparison.Ordinal);
            Assert.Contains("ANSWER: 40,", tcp, StringComparison.Ordinal);
            Assert.Matches("status: (NXDOMAIN|SERVFAIL)", tcp); // SERVFAIL when G has no DNS server to ask

            // other types go to G's nameserver (dnsmasq in S, from G's resolv.conf) and come back as it answered
            var mx = Dig(lab, setup, server, "mx.far.test", "MX");
            Assert.Contains("status: NOERROR", mx, StringComparison.Ordinal);
            Assert.Matches(@"mx\.far\.test\.\s+\d+\s+IN\s+MX\s+10 mail\.far\.test\.", mx);
            var txt = Dig(lab, setup, server, "+tcp", "txt.far.test", "TXT");
            Assert.Contains("\"sharptun through the gateway\"", txt, StringComparison.Ordinal);

            var metrics = setup.Scrape("/metrics");
            Assert.Matches(@"sharptun_gateway_dns_forwarded_total [1-9]", metrics.Stdout);
            Assert.True(metrics.Success, metrics.ToString());
            Assert.Matches(@"sharptun_gateway_dns_queries_total\{peer=""[A-Za-z0-9+/=]{44}""\} (9|[1-9][0-9])", metrics.Stdout);
            Assert.Matches(@"dns upstream: [1-9][0-9]* answered by a nameserver", setup.StopGateway());
        }
        catch
        {
            output.WriteLine(setup.Describe());
            throw;
        }
    }

    private string Dig(NetnsLab lab, Setup setup, params string[] args)
    {
        var result = lab.Exec(setup.ClientNs, "dig", ["+time=5", "+tries=2", .. args]);
        output.WriteLine(result.ToString());
        Assert.True(result.Success, result.ToString());
        return result.Stdout;
    }

    private static int MessageSize(string digOutput)
    {
        var match = Regex.Match(digOutput, @"MSG SIZE\s+rcvd: (\d+)");
        Assert.True(match.Success, digOutput);
        return int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
    }
}

using System.Buffers.Binary;
using System.Text;

namespace ResNet.Trainer.Native;

/// <summary>
/// Reads and edits the symbol-version requirements (<c>.gnu.version_r</c>) of a 64-bit little-endian ELF
/// shared library. Used to mark one <c>GLIBCXX</c> requirement weak so the dynamic loader accepts an older
/// libstdc++ when no relocation binds to a symbol of that version.
/// </summary>
internal static class ElfVersionPatcher
{
    private const uint ShtGnuVerneed = 0x6ffffffe;
    private const ushort VerFlagWeak = 0x2;

    /// <summary>One version requirement (<c>Elf64_Vernaux</c>) of an ELF file.</summary>
    /// <param name="File">The library the requirement is on (e.g. <c>libstdc++.so.6</c>).</param>
    /// <param name="Version">The version name (e.g. <c>GLIBCXX_3.4.32</c>).</param>
    /// <param name="IsWeak">Whether the requirement carries <c>VER_FLG_WEAK</c>.</param>
    /// <param name="FlagsOffset">File offset of the entry's <c>vna_flags</c> field.</param>
    public sealed record VersionRequirement(string File, string Version, bool IsWeak, long FlagsOffset);

    /// <summary>Lists the version requirements of an ELF64 little-endian image.</summary>
    /// <exception cref="InvalidDataException">The bytes are not a 64-bit little-endian ELF file.</exception>
    public static IReadOnlyList<VersionRequirement> ReadRequirements(ReadOnlySpan<byte> elf)
    {
        if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F')
            throw new InvalidDataException("Not an ELF file (bad magic).");
        if (elf[4] != 2 || elf[5] != 1)
            throw new InvalidDataException("Only 64-bit little-endian ELF files are supported.");

        long shoff = (long)BinaryPrimitives.ReadUInt64LittleEndian(elf[0x28..]);
        int shentsize = BinaryPrimitives.ReadUInt16LittleEndian(elf[0x3A..]);
        int shnum = BinaryPrimitives.ReadUInt16LittleEndian(elf[0x3C..]);
        var result = new List<VersionRequirement>();
        for (int i = 0; i < shnum; i++)
        {
            var sh = elf.Slice(checked((int)(shoff + (long)i * shentsize)), shentsize);
            if (BinaryPrimitives.ReadUInt32LittleEndian(sh[4..]) != ShtGnuVerneed) continue;
            long offset = (long)BinaryPrimitives.ReadUInt64LittleEndian(sh[0x18..]);
            int link = (int)BinaryPrimitives.ReadUInt32LittleEndian(sh[0x28..]);
            int count = (int)BinaryPrimitives.ReadUInt32LittleEndian(sh[0x2C..]); // sh_info: number of Verneed entries
            var strSh = elf.Slice(checked((int)(shoff + (long)link * shentsize)), shentsize);
            long strOffset = (long)BinaryPrimitives.ReadUInt64LittleEndian(strSh[0x18..]);

            long need = offset;
            for (int n = 0; n < count; n++)
            {
                var vn = elf[(int)need..];
                int auxCount = BinaryPrimitives.ReadUInt16LittleEndian(vn[2..]);
                string file = ReadString(elf, strOffset + BinaryPrimitives.ReadUInt32LittleEndian(vn[4..]));
                long aux = need + BinaryPrimitives.ReadUInt32LittleEndian(vn[8..]);
                for (int a = 0; a < auxCount; a++)
                {
                    var va = elf[(int)aux..];
                    ushort flags = BinaryPrimitives.ReadUInt16LittleEndian(va[4..]);
                    string name = ReadString(elf, strOffset + BinaryPrimitives.ReadUInt32LittleEndian(va[8..]));
                    result.Add(new VersionRequirement(file, name, (flags & VerFlagWeak) != 0, aux + 4));
                    uint nextAux = BinaryPrimitives.ReadUInt32LittleEndian(va[12..]);
                    if (nextAux == 0) break;
                    aux += nextAux;
                }
                uint next = BinaryPrimitives.ReadUInt32LittleEndian(vn[12..]);
                if (next == 0) break;
                need += next;
            }
        }
        return result;
    }

    /// <summary>
    /// Sets <c>VER_FLG_WEAK</c> on every requirement named <paramref name="version"/>.
    /// Returns the number of entries changed (0 when already weak or absent).
    /// </summary>
    public static int MarkWeak(byte[] elf, string version)
    {
        int changed = 0;
        foreach (var req in ReadRequirements(elf))
        {
            if (req.Version != version || req.IsWeak) continue;
            var span = elf.AsSpan((int)req.FlagsOffset, 2);
            BinaryPrimitives.WriteUInt16LittleEndian(span, (ushort)(BinaryPrimitives.ReadUInt16LittleEndian(span) | VerFlagWeak));
            changed++;
        }
        return changed;
    }

    private static string ReadString(ReadOnlySpan<byte> elf, long offset)
    {
        var s = elf[(int)offset..];
        int end = s.IndexOf((byte)0);
        return Encoding.ASCII.GetString(end < 0 ? s : s[..end]);
    }
}

//! Terminal-ID port recipes for illumos records (bsm.md section 6.1).
//!
//! illumos packs a TCP port pair into the subject's terminal port: X = (rport << 16 | lport) computed
//! on network-order ports, so on x86 each half is byte-swapped; a 64-bit dev_t then holds X as is
//! (sign-extended from a 64-bit caller) or DEVEXPL(X) (from a 32-bit caller).

pub const RECIPE_32BIT: &str = "32bit";
pub const RECIPE_NATIVE64: &str = "native64";
pub const RECIPE_DEVEXPL: &str = "devexpl";

/// Recover the 32-bit packed value X from a 32- or 64-bit terminal port, with the recipe used.
pub fn port_to_x(port: u64, bits: u8) -> Option<(u32, &'static str)> {
    if bits == 32 {
        return Some(((port & 0xFFFF_FFFF) as u32, RECIPE_32BIT));
    }
    let (high, low) = (port >> 32, port & 0xFFFF_FFFF);
    if high == 0 || high == 0xFFFF_FFFF {
        Some((low as u32, RECIPE_NATIVE64))
    } else if high <= 0x3FFF && low <= 0x3FFFF {
        Some((((high << 18) | low) as u32, RECIPE_DEVEXPL))
    } else {
        None
    }
}

/// (rport, lport) from X, as written by an x86 host (little-endian halves).
pub fn x_to_port_pair(x: u32) -> (u32, u32) {
    ((x >> 24) | ((x >> 8) & 0xFF00), ((x >> 8) & 0xFF) | ((x & 0xFF) << 8))
}

/// Probable (rport, lport, recipe) of an illumos terminal port, None when it cannot be a pair.
pub fn decode_port_pair(port: u64, bits: u8) -> Option<(u32, u32, &'static str)> {
    port_to_x(port, bits).map(|(x, recipe)| {
        let (r, l) = x_to_port_pair(x);
        (r, l, recipe)
    })
}

/// praudit's split of a terminal port: 14/18 bits for 32-bit ports, 32/32 for 64-bit ports.
pub fn major_minor(port: u64, bits: u8) -> (u64, u64) {
    if bits == 32 { ((port >> 18) & 0x3FFF, port & 0x3FFFF) } else { (port >> 32, port & 0xFFFF_FFFF) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipes() {
        // bsm.md 6.1: ssh from port 54321 to 22 on x86: X = 0x31d41600
        assert_eq!(decode_port_pair(0x31D4_1600, 32), Some((54321, 22, RECIPE_32BIT)));
        assert_eq!(decode_port_pair(0x31D4_1600, 64), Some((54321, 22, RECIPE_NATIVE64)));
        assert_eq!(decode_port_pair(0xFFFF_FFFF_31D4_1600, 64), Some((54321, 22, RECIPE_NATIVE64)));
        let devexpl = ((0x31D4_1600u64 >> 18) << 32) | (0x31D4_1600 & 0x3FFFF);
        assert_eq!(decode_port_pair(devexpl, 64), Some((54321, 22, RECIPE_DEVEXPL)));
        assert_eq!(decode_port_pair(0x0001_0000_FFFF_FFFF, 64), None);
        assert_eq!(major_minor(0x31D4_1600, 32), (0x31D4_1600 >> 18, 0x31D4_1600 & 0x3FFFF));
    }
}

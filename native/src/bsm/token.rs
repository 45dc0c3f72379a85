//! BSM tokens: one decoder per token id (bsm.md section 4).
//!
//! Every decoder reads from the record's own slice `b`, starting just after the token id, and returns
//! the token (None for the trailer, which is a record fact) and the offset after it. Field checks
//! happen in the Python decoder's order, so a token that is both short and malformed fails the same
//! way in both (a whole fixed layout is checked for length before any of its fields is judged).

use super::addr::{ip4, ip4_rev, ip6};
use super::reader::{TResult, TokenError, address, be16, be32, cstrs, need, str16, text, u8_at};

/// Per-record facts token decoders need, and what they report back.
#[derive(Debug)]
pub struct Ctx {
    /// Header version 2 or unknown (not 10/11): illumos layouts and tables.
    pub illumos: bool,
    /// Event number >= 6144 (user-level events, written by libbsm).
    pub user_level: bool,
    /// The header's record length (the trailer must repeat it).
    pub reclen: u32,
    pub has_trailer: bool,
    /// Items kept per list (exec_args, groups, ...); the rest are walked but not kept.
    pub max_items: usize,
    /// List items walked but not kept because of `max_items` (in tokens that are kept).
    pub items_dropped: u64,
    /// False once the record's token cap is reached: lists are then walked without keeping anything.
    pub keeping: bool,
    /// Test hook: panic inside the next token decoder (see `python.rs`, `_bsm_decode_with_fault`).
    pub fault: bool,
}

impl Ctx {
    pub fn new(illumos: bool, user_level: bool, reclen: u32, max_items: usize) -> Self {
        Ctx {
            illumos,
            user_level,
            reclen,
            has_trailer: false,
            max_items,
            items_dropped: 0,
            keeping: true,
            fault: false,
        }
    }

    /// How many of `count` list items to keep.
    fn keep(&self, count: usize) -> usize {
        if self.keeping { count.min(self.max_items) } else { 0 }
    }

    /// Count what a token that decoded completely left out of a list of `count` items.
    fn dropped(&mut self, count: usize) {
        if self.keeping {
            self.items_dropped += count.saturating_sub(self.max_items) as u64;
        }
    }
}

/// Terminal id of a subject/process token.
#[derive(Debug, Clone, PartialEq)]
pub struct TermId {
    /// The raw port as written.
    pub port: u64,
    pub port_bits: u8,
    pub major: u64,
    pub minor: u64,
    /// Address type: 4 or 16.
    pub atype: u32,
    pub host: String,
    /// illumos records only (bsm.md 6.1).
    pub illumos: Option<IllumosTid>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IllumosTid {
    pub rport: Option<u32>,
    pub lport: Option<u32>,
    pub port_recipe: Option<&'static str>,
    /// User-level, non-_ex token: libbsm may have stored the address byte-reversed.
    pub host_uncertain: bool,
    pub host_reversed: Option<String>,
}

/// What an argument's value means, added beside it (`_annotate_args`).
#[derive(Debug, Clone, PartialEq)]
pub enum ArgNote {
    None,
    /// `value_text`: a signal name, a setppriv op or an octal mode.
    Text(String),
    /// `value_classes` and `value_text`: an audit mask.
    Classes(Vec<&'static str>),
    /// `rport`, `lport`, `port_recipe`: a setaudit terminal port on illumos.
    Ports(Option<(u32, u32, &'static str)>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum ArbValues {
    /// The string print format of bytes.
    Text(String),
    Ints(Vec<u64>),
}

/// One decoded token. `id` is the token id byte, which tells widths apart.
#[derive(Debug, Clone, PartialEq)]
pub enum Token {
    /// subject (`process == false`) or process, any width, _ex or not.
    Subject {
        id: u8,
        process: bool,
        audit_uid: u32,
        uid: u32,
        gid: u32,
        ruid: u32,
        rgid: u32,
        pid: u32,
        sid: u32,
        tid: TermId,
    },
    Return {
        id: u8,
        errval: u8,
        retval: i64,
        bits: u8,
        error: Option<&'static str>,
    },
    Argument {
        id: u8,
        arg_num: u8,
        value: u64,
        desc: String,
        bits: u8,
        note: ArgNote,
    },
    Attribute {
        id: u8,
        mode: u32,
        uid: u32,
        gid: u32,
        fsid: i32,
        nodeid: i64,
        device: u64,
        bits: u8,
    },
    /// One str16 field: fmri, path, text, X_atom, zone (`name` is the praudit tag, `field` the key).
    Str {
        id: u8,
        name: &'static str,
        field: &'static str,
        text: String,
    },
    /// A counted list of C strings: path_attr, exec_args, exec_env.
    StrList {
        id: u8,
        name: &'static str,
        field: &'static str,
        items: Vec<String>,
    },
    Privilege {
        set_type: String,
        privs: String,
    },
    Secflags {
        set_type: String,
        flags: String,
    },
    /// use_of_privilege (0x39), or 0x3f in libbsm's au_to_upriv() layout (`note`).
    UsePrivilege {
        id: u8,
        result: bool,
        privs: String,
    },
    UseAuthorization {
        authorization: String,
    },
    User {
        uid: u32,
        username: String,
    },
    Cmd {
        argv: Vec<String>,
        arge: Vec<String>,
    },
    Opaque {
        data: Vec<u8>,
    },
    Arbitrary {
        how: u8,
        unit: u8,
        count: u8,
        values: ArbValues,
        raw: Vec<u8>,
    },
    /// ip_address: in_addr (0x2a) and in_addr_ex (0x7e).
    IpAddress {
        id: u8,
        atype: u32,
        address: String,
    },
    Host {
        address: String,
    },
    IpPort {
        port: u16,
        port_swapped: u16,
    },
    Ip {
        version: u8,
        service_type: u8,
        time_to_live: u8,
        protocol: u8,
        len: u16,
        ip_id: u16,
        offset: u16,
        cksum: u16,
        src_addr: String,
        dest_addr: String,
    },
    /// socket (0x7f, socket_ex).
    Socket {
        sock_domain: u16,
        sock_type: u16,
        atype: u16,
        lport: u16,
        laddr: String,
        fport: u16,
        faddr: String,
    },
    /// old_socket (0x2e), the kernel's 9-byte layout.
    OldSocket9 {
        family: u16,
        port: u16,
        addr: String,
        raw: Vec<u8>,
    },
    /// old_socket (0x2e), libbsm's / OpenBSM's 15-byte layout.
    OldSocket15 {
        sock_type: u16,
        lport: u16,
        laddr: String,
        fport: u16,
        faddr: String,
        raw: Vec<u8>,
    },
    SocketInet {
        family: u16,
        port: u16,
        addr: String,
    },
    SocketInet6 {
        family: u8,
        port: u16,
        addr: String,
    },
    SocketUnix {
        family: u16,
        path: String,
    },
    Tid {
        remote_port: u16,
        local_port: u16,
        ip_type: u32,
        host: String,
    },
    Sequence {
        seq_num: u32,
    },
    Ipc {
        ipc_type: u8,
        ipc_id: u32,
    },
    IpcPerm {
        uid: u32,
        gid: u32,
        creator_uid: u32,
        creator_gid: u32,
        mode: u32,
        seq: u32,
        key: u32,
    },
    Exit {
        errval: u32,
        retval: i32,
    },
    Acl {
        atype: u32,
        value: u32,
        mode: u32,
    },
    Ace {
        id_value: u32,
        access_mask: u32,
        flags: u16,
        atype: u16,
    },
    Group {
        id: u8,
        gids: Vec<u32>,
    },
    Label {
        label_id: u8,
        c_len: u8,
        classification: i16,
        compartments: [u32; 8],
        raw: Vec<u8>,
    },
    Liaison {
        value: u32,
    },
    /// argument_uuid (0x84) / return_uuid (0x85).
    Uuid {
        id: u8,
        arg_num: u8,
        uuid: String,
        desc: String,
    },
    /// A file token inside a record (0x11 / 0x78).
    File {
        id: u8,
        sec: u64,
        subsec: u64,
        time_ns: u128,
        name: String,
    },
    /// X_color_map, X_cursor, X_font, X_graphic_context, X_pixmap, X_window.
    XObject {
        id: u8,
        name: &'static str,
        xid: i32,
        xcreator_uid: u32,
    },
    XProperty {
        xid: i32,
        xcreator_uid: u32,
        name: String,
    },
    XSelection {
        x_sel_text: String,
        x_sel_type: String,
        x_sel_data: String,
    },
    XClient {
        client: u32,
    },
    /// The undecodable rest of a record, from the token id at `offset` on.
    Unknown {
        id: u8,
        offset: u64,
        data: Vec<u8>,
    },
}

impl Token {
    /// The praudit tag name (`"token"` in the JSON).
    pub fn name(&self) -> &'static str {
        match self {
            Token::Subject { process: false, .. } => "subject",
            Token::Subject { process: true, .. } => "process",
            Token::Return { .. } => "return",
            Token::Argument { .. } => "argument",
            Token::Attribute { .. } => "attribute",
            Token::Str { name, .. } | Token::StrList { name, .. } | Token::XObject { name, .. } => name,
            Token::Privilege { .. } => "privilege",
            Token::Secflags { .. } => "secflags",
            Token::UsePrivilege { .. } => "use_of_privilege",
            Token::UseAuthorization { .. } => "use_of_authorization",
            Token::User { .. } => "user",
            Token::Cmd { .. } => "cmd",
            Token::Opaque { .. } => "opaque",
            Token::Arbitrary { .. } => "arbitrary",
            Token::IpAddress { .. } => "ip_address",
            Token::Host { .. } => "host",
            Token::IpPort { .. } => "ip_port",
            Token::Ip { .. } => "ip",
            Token::Socket { .. } => "socket",
            Token::OldSocket9 { .. } | Token::OldSocket15 { .. } => "old_socket",
            Token::SocketInet { .. } => "socket_inet",
            Token::SocketInet6 { .. } => "socket_inet6",
            Token::SocketUnix { .. } => "socket_unix",
            Token::Tid { .. } => "tid",
            Token::Sequence { .. } => "sequence",
            Token::Ipc { .. } => "IPC",
            Token::IpcPerm { .. } => "IPC_perm",
            Token::Exit { .. } => "exit",
            Token::Acl { .. } | Token::Ace { .. } => "acl",
            Token::Group { .. } => "group",
            Token::Label { .. } => "sensitivity_label",
            Token::Liaison { .. } => "liaison",
            Token::Uuid { id: 0x84, .. } => "argument_uuid",
            Token::Uuid { .. } => "return_uuid",
            Token::File { .. } => "file",
            Token::XProperty { .. } => "X_property",
            Token::XSelection { .. } => "X_selection",
            Token::XClient { .. } => "X_client",
            Token::Unknown { .. } => "unknown",
        }
    }

    /// The token id byte.
    pub fn id(&self) -> u8 {
        match self {
            Token::Subject { id, .. }
            | Token::Return { id, .. }
            | Token::Argument { id, .. }
            | Token::Attribute { id, .. }
            | Token::Str { id, .. }
            | Token::StrList { id, .. }
            | Token::UsePrivilege { id, .. }
            | Token::IpAddress { id, .. }
            | Token::Group { id, .. }
            | Token::Uuid { id, .. }
            | Token::File { id, .. }
            | Token::XObject { id, .. }
            | Token::Unknown { id, .. } => *id,
            Token::Privilege { .. } => 0x38,
            Token::Secflags { .. } => 0x62,
            Token::UseAuthorization { .. } => 0x3F,
            Token::User { .. } => 0x36,
            Token::Cmd { .. } => 0x51,
            Token::Opaque { .. } => 0x29,
            Token::Arbitrary { .. } => 0x21,
            Token::Host { .. } => 0x70,
            Token::IpPort { .. } => 0x2C,
            Token::Ip { .. } => 0x2B,
            Token::Socket { .. } => 0x7F,
            Token::OldSocket9 { .. } | Token::OldSocket15 { .. } => 0x2E,
            Token::SocketInet { .. } => 0x80,
            Token::SocketInet6 { .. } => 0x81,
            Token::SocketUnix { .. } => 0x82,
            Token::Tid { .. } => 0x61,
            Token::Sequence { .. } => 0x2F,
            Token::Ipc { .. } => 0x22,
            Token::IpcPerm { .. } => 0x32,
            Token::Exit { .. } => 0x52,
            Token::Acl { .. } => 0x30,
            Token::Ace { .. } => 0x35,
            Token::Label { .. } => 0x33,
            Token::Liaison { .. } => 0x3A,
            Token::XProperty { .. } => 0x49,
            Token::XSelection { .. } => 0x43,
            Token::XClient { .. } => 0x4B,
        }
    }
}

/// Token ids with a decoder inside a record (the Python `_DISPATCH`; headers are not among them).
const fn known_table() -> [bool; 256] {
    let ids: [u8; 66] = [
        0x11, 0x13, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2A, 0x2B, 0x2C, 0x2D, 0x2E, 0x2F,
        0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x38, 0x39, 0x3A, 0x3B, 0x3C, 0x3D, 0x3E, 0x3F, 0x40, 0x43, 0x44,
        0x45, 0x46, 0x47, 0x48, 0x49, 0x4A, 0x4B, 0x51, 0x52, 0x60, 0x61, 0x62, 0x70, 0x71, 0x72, 0x73, 0x75, 0x77,
        0x78, 0x7A, 0x7B, 0x7C, 0x7D, 0x7E, 0x7F, 0x80, 0x81, 0x82, 0x84, 0x85,
    ];
    let mut t = [false; 256];
    let mut i = 0;
    while i < ids.len() {
        t[ids[i] as usize] = true;
        i += 1;
    }
    t
}
static KNOWN: [bool; 256] = known_table();

/// True when `id` has a token decoder.
#[inline]
pub fn is_known(id: u8) -> bool {
    KNOWN[id as usize]
}

/// The record ends at q, or a known token id starts there.
fn next_fits(b: &[u8], q: usize) -> bool {
    q == b.len() || (q < b.len() && is_known(b[q]))
}

fn le16(b: &[u8], p: usize) -> u16 {
    u16::from_le_bytes([b[p], b[p + 1]])
}

fn raw_be16(b: &[u8], p: usize) -> u16 {
    u16::from_be_bytes([b[p], b[p + 1]])
}

fn raw_be32(b: &[u8], p: usize) -> u32 {
    u32::from_be_bytes([b[p], b[p + 1], b[p + 2], b[p + 3]])
}

fn raw_be64(b: &[u8], p: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[p..p + 8]);
    u64::from_be_bytes(a)
}

fn seven_ids(b: &[u8], p: usize) -> [u32; 7] {
    std::array::from_fn(|i| raw_be32(b, p + 4 * i))
}

/// File token sub-second: illumos 0x11 and 0x78 microseconds, OpenBSM 0x11 milliseconds.
pub fn file_time_ns(sec: u64, subsec: u64, id: u8, illumos: bool) -> u128 {
    let unit: u128 = if illumos || id == 0x78 { 1_000 } else { 1_000_000 };
    u128::from(sec) * 1_000_000_000 + u128::from(subsec) * unit
}

/// Decode the token whose id is at `b[p - 1]`; `p` is just after the id. None for unknown ids.
pub fn decode(id: u8, b: &[u8], p: usize, ctx: &mut Ctx) -> Option<TResult<(Option<Token>, usize)>> {
    if ctx.fault {
        ctx.fault = false;
        panic!("fault injected into the BSM token decoder (token 0x{id:02x})");
    }
    let some = |r: TResult<(Token, usize)>| Some(r.map(|(t, e)| (Some(t), e)));
    match id {
        0x11 => some(file32(b, p, ctx)),
        0x13 => Some(trailer(b, p, ctx).map(|e| (None, e))),
        0x20 => some(str_token(b, p, 0x20, "fmri", "fmri")),
        0x21 => some(data(b, p)),
        0x22 => some(ipc(b, p)),
        0x23 => some(str_token(b, p, 0x23, "path", "path")),
        0x24 => some(subject(b, p, ctx, 0x24, false, 32, false)),
        0x25 => some(str_list(b, p, ctx, 0x25, "path_attr", "xattr")),
        0x26 => some(subject(b, p, ctx, 0x26, true, 32, false)),
        0x27 => some(ret(b, p, ctx, 0x27, 32)),
        0x28 => some(str_token(b, p, 0x28, "text", "text")),
        0x29 => some(opaque(b, p)),
        0x2A => some(address(b, p, 4).map(|(a, e)| (Token::IpAddress { id: 0x2A, atype: 4, address: a }, e))),
        0x2B => some(ip(b, p, ctx)),
        0x2C => some(iport(b, p)),
        0x2D => some(arg32(b, p)),
        0x2E => some(old_socket(b, p, ctx)),
        0x2F => some(be32(b, p).map(|v| (Token::Sequence { seq_num: v }, p + 4))),
        0x30 => some(acl(b, p)),
        0x31 => some(attribute(b, p, 0x31)),
        0x32 => some(ipc_perm(b, p)),
        0x33 => some(label(b, p, ctx)),
        0x34 => some(groups_old(b, p, ctx)),
        0x35 => some(ace(b, p)),
        0x36 => some(user(b, p)),
        0x38 => some(two_str(b, p).map(|(s, t, e)| (Token::Privilege { set_type: s, privs: t }, e))),
        0x39 => some(upriv(b, p)),
        0x3A => some(be32(b, p).map(|v| (Token::Liaison { value: v }, p + 4))),
        0x3B => some(newgroups(b, p, ctx)),
        0x3C => some(str_list(b, p, ctx, 0x3C, "exec_args", "args")),
        0x3D => some(str_list(b, p, ctx, 0x3D, "exec_env", "env")),
        0x3E => some(attribute(b, p, 0x3E)),
        0x3F => some(uauth(b, p)),
        0x40 => some(str_token(b, p, 0x40, "X_atom", "atom")),
        0x43 => some(xselect(b, p)),
        0x44 => some(xobj(b, p, 0x44, "X_color_map")),
        0x45 => some(xobj(b, p, 0x45, "X_cursor")),
        0x46 => some(xobj(b, p, 0x46, "X_font")),
        0x47 => some(xobj(b, p, 0x47, "X_graphic_context")),
        0x48 => some(xobj(b, p, 0x48, "X_pixmap")),
        0x49 => some(xproperty(b, p)),
        0x4A => some(xobj(b, p, 0x4A, "X_window")),
        0x4B => some(be32(b, p).map(|v| (Token::XClient { client: v }, p + 4))),
        0x51 => some(cmd(b, p, ctx)),
        0x52 => some(exit(b, p)),
        0x60 => some(str_token(b, p, 0x60, "zone", "name")),
        0x61 => some(tid(b, p)),
        0x62 => some(two_str(b, p).map(|(s, t, e)| (Token::Secflags { set_type: s, flags: t }, e))),
        0x70 => some(address(b, p, 4).map(|(a, e)| (Token::Host { address: a }, e))),
        0x71 => some(arg64(b, p)),
        0x72 => some(ret(b, p, ctx, 0x72, 64)),
        0x73 => some(attribute(b, p, 0x73)),
        0x75 => some(subject(b, p, ctx, 0x75, false, 64, false)),
        0x77 => some(subject(b, p, ctx, 0x77, true, 64, false)),
        0x78 => some(file64(b, p)),
        0x7A => some(subject(b, p, ctx, 0x7A, false, 32, true)),
        0x7B => some(subject(b, p, ctx, 0x7B, true, 32, true)),
        0x7C => some(subject(b, p, ctx, 0x7C, false, 64, true)),
        0x7D => some(subject(b, p, ctx, 0x7D, true, 64, true)),
        0x7E => some(in_addr_ex(b, p)),
        0x7F => some(socket_ex(b, p, ctx)),
        0x80 => some(sockinet32(b, p)),
        0x81 => some(sockinet128(b, p)),
        0x82 => some(sockunix(b, p)),
        0x84 | 0x85 => some(uuid(b, p, id)),
        _ => None,
    }
}

// ---------------------------------------------------------------- subject / process

fn subject(b: &[u8], p: usize, ctx: &Ctx, id: u8, process: bool, bits: u8, ex: bool) -> TResult<(Token, usize)> {
    let port_size = if bits == 32 { 4 } else { 8 };
    let head = 28 + port_size + 4; // seven ids, port, then the address type (_ex) or the IPv4 address
    need(b, p, head)?;
    let [audit_uid, uid, gid, ruid, rgid, pid, sid] = seven_ids(b, p);
    let port = if bits == 32 { u64::from(raw_be32(b, p + 28)) } else { raw_be64(b, p + 28) };
    let last = p + 28 + port_size;
    let (atype, host, end, host_bytes) = if ex {
        let atype = raw_be32(b, last);
        let (host, end) = address(b, last + 4, u64::from(atype))?;
        (atype, host, end, None)
    } else {
        (4, ip4(&b[last..last + 4]), last + 4, Some(&b[last..last + 4]))
    };
    let (major, minor) = if bits == 32 { (port >> 18, port & 0x3FFFF) } else { (port >> 32, port & 0xFFFF_FFFF) };
    let illumos = if ctx.illumos {
        let pair = super::ports::decode_port_pair(port, bits);
        let uncertain = ctx.user_level && !ex;
        Some(IllumosTid {
            rport: pair.map(|(r, _, _)| r),
            lport: pair.map(|(_, l, _)| l),
            port_recipe: pair.map(|(_, _, recipe)| recipe),
            host_uncertain: uncertain,
            host_reversed: if uncertain { host_bytes.map(ip4_rev) } else { None },
        })
    } else {
        None
    };
    let tid = TermId { port, port_bits: bits, major, minor, atype, host, illumos };
    Ok((Token::Subject { id, process, audit_uid, uid, gid, ruid, rgid, pid, sid, tid }, end))
}

// ---------------------------------------------------------------- return / arg / attr

fn return_error(status: u8, retval: i64, ctx: &Ctx) -> Option<&'static str> {
    use super::tables::{ADT_FAIL, Dialect, ILLUMOS, PAM_ERRORS, lookup};
    if status == 0 {
        return None;
    }
    if ctx.illumos && ctx.user_level {
        return if (1000..2000).contains(&retval) {
            lookup(ADT_FAIL, retval)
        } else if retval >= 2000 {
            lookup(PAM_ERRORS, retval)
        } else {
            ILLUMOS.errno(retval)
        };
    }
    Dialect::of(ctx.illumos).errno(i64::from(status))
}

fn ret(b: &[u8], p: usize, ctx: &Ctx, id: u8, bits: u8) -> TResult<(Token, usize)> {
    let size = if bits == 32 { 5 } else { 9 };
    need(b, p, size)?;
    let errval = b[p];
    let retval = if bits == 32 { i64::from(raw_be32(b, p + 1) as i32) } else { raw_be64(b, p + 1) as i64 };
    let error = return_error(errval, retval, ctx);
    Ok((Token::Return { id, errval, retval, bits, error }, p + size))
}

fn arg32(b: &[u8], p: usize) -> TResult<(Token, usize)> {
    need(b, p, 7)?;
    let (arg_num, value, n) = (b[p], u64::from(raw_be32(b, p + 1)), usize::from(raw_be16(b, p + 5)));
    let e = p + 7 + n;
    if e > b.len() {
        return Err(TokenError::Truncated);
    }
    let desc = text(super::reader::until_nul(&b[p + 7..e]));
    Ok((Token::Argument { id: 0x2D, arg_num, value, desc, bits: 32, note: ArgNote::None }, e))
}

fn arg64(b: &[u8], p: usize) -> TResult<(Token, usize)> {
    need(b, p, 11)?;
    let (arg_num, value) = (b[p], raw_be64(b, p + 1));
    let (desc, e) = str16(b, p + 9)?;
    Ok((Token::Argument { id: 0x71, arg_num, value, desc, bits: 64, note: ArgNote::None }, e))
}

fn attribute(b: &[u8], p: usize, id: u8) -> TResult<(Token, usize)> {
    // old (0x31): >IIIiiI; attr32 (0x3e): >IIIiqI; attr64 (0x73): >IIIiqQ
    let (size, bits) = match id {
        0x31 => (24, 0),
        0x3E => (28, 32),
        _ => (32, 64),
    };
    need(b, p, size)?;
    let (mode, uid, gid, fsid) = (raw_be32(b, p), raw_be32(b, p + 4), raw_be32(b, p + 8), raw_be32(b, p + 12) as i32);
    let (nodeid, device) = match id {
        0x31 => (i64::from(raw_be32(b, p + 16) as i32), u64::from(raw_be32(b, p + 20))),
        0x3E => (raw_be64(b, p + 16) as i64, u64::from(raw_be32(b, p + 24))),
        _ => (raw_be64(b, p + 16) as i64, raw_be64(b, p + 24)),
    };
    Ok((Token::Attribute { id, mode, uid, gid, fsid, nodeid, device, bits }, p + size))
}

// ---------------------------------------------------------------- string-ish tokens

fn str_token(b: &[u8], p: usize, id: u8, name: &'static str, field: &'static str) -> TResult<(Token, usize)> {
    let (text, e) = str16(b, p)?;
    Ok((Token::Str { id, name, field, text }, e))
}

fn str_list(
    b: &[u8],
    p: usize,
    ctx: &mut Ctx,
    id: u8,
    name: &'static str,
    field: &'static str,
) -> TResult<(Token, usize)> {
    let count = be32(b, p)? as usize;
    if count > b.len() {
        return Err(TokenError::Truncated); // each string takes at least one byte
    }
    let (items, e) = cstrs(b, p + 4, count, ctx.keep(count))?;
    ctx.dropped(count);
    Ok((Token::StrList { id, name, field, items }, e))
}

fn two_str(b: &[u8], p: usize) -> TResult<(String, String, usize)> {
    let (first, p) = str16(b, p)?;
    let (second, p) = str16(b, p)?;
    Ok((first, second, p))
}

fn upriv(b: &[u8], p: usize) -> TResult<(Token, usize)> {
    let result = u8_at(b, p)? != 0;
    let (privs, e) = str16(b, p + 1)?;
    Ok((Token::UsePrivilege { id: 0x39, result, privs }, e))
}

/// 0x3f is use_of_authorization (str16), but illumos libbsm au_to_upriv() also writes 0x3f in front of
/// the upriv layout (u8 success, str16): that reading only when the str16 one does not fit.
fn uauth(b: &[u8], p: usize) -> TResult<(Token, usize)> {
    if let Ok((text, q)) = str16(b, p)
        && next_fits(b, q)
    {
        return Ok((Token::UseAuthorization { authorization: text }, q));
    }
    let first = u8_at(b, p)?;
    if first <= 1
        && let Ok((privs, q)) = str16(b, p + 1)
        && next_fits(b, q)
    {
        return Ok((Token::UsePrivilege { id: 0x3F, result: first != 0, privs }, q));
    }
    let (text, q) = str16(b, p)?;
    Ok((Token::UseAuthorization { authorization: text }, q))
}

fn user(b: &[u8], p: usize) -> TResult<(Token, usize)> {
    let uid = be32(b, p)?;
    let (username, e) = str16(b, p + 4)?;
    Ok((Token::User { uid, username }, e))
}

fn cmd(b: &[u8], p: usize, ctx: &mut Ctx) -> TResult<(Token, usize)> {
    let mut lists: [Vec<String>; 2] = [Vec::new(), Vec::new()];
    let mut counts = [0usize; 2];
    let mut p = p;
    for (list, counted) in lists.iter_mut().zip(counts.iter_mut()) {
        let count = usize::from(be16(b, p)?);
        p += 2;
        let keep = ctx.keep(count);
        for i in 0..count {
            let (s, q) = str16(b, p)?;
            if i < keep {
                list.push(s);
            }
            p = q;
        }
        *counted = count;
    }
    counts.iter().for_each(|&count| ctx.dropped(count));
    let [argv, arge] = lists;
    Ok((Token::Cmd { argv, arge }, p))
}

fn opaque(b: &[u8], p: usize) -> TResult<(Token, usize)> {
    let n = usize::from(be16(b, p)?);
    let e = p + 2 + n;
    if e > b.len() {
        return Err(TokenError::Truncated);
    }
    Ok((Token::Opaque { data: b[p + 2..e].to_vec() }, e))
}

pub const PRINT_NAMES: [&str; 5] = ["binary", "octal", "decimal", "hex", "string"];
pub const UNIT_NAMES: [&str; 4] = ["byte", "short", "int32", "int64"];
const UNIT_SIZES: [usize; 4] = [1, 2, 4, 8];

fn data(b: &[u8], p: usize) -> TResult<(Token, usize)> {
    need(b, p, 3)?;
    let (how, unit, count) = (b[p], b[p + 1], b[p + 2]);
    if unit > 3 {
        return Err(TokenError::Bad(format!("data token unit type {unit}")));
    }
    let size = UNIT_SIZES[usize::from(unit)];
    let e = p + 3 + size * usize::from(count);
    if e > b.len() {
        return Err(TokenError::Truncated);
    }
    let raw = &b[p + 3..e];
    let values = if how == 4 && unit == 0 {
        ArbValues::Text(text(raw))
    } else {
        ArbValues::Ints(
            raw.chunks_exact(size).map(|c| c.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x))).collect(),
        )
    };
    Ok((Token::Arbitrary { how, unit, count, values, raw: raw.to_vec() }, e))
}

// ---------------------------------------------------------------- network tokens

fn in_addr_ex(b: &[u8], p: usize) -> TResult<(Token, usize)> {
    let atype = be32(b, p)?;
    let (address, e) = address(b, p + 4, u64::from(atype))?;
    Ok((Token::IpAddress { id: 0x7E, atype, address }, e))
}

fn iport(b: &[u8], p: usize) -> TResult<(Token, usize)> {
    need(b, p, 2)?;
    Ok((Token::IpPort { port: raw_be16(b, p), port_swapped: le16(b, p) }, p + 2))
}

fn ip(b: &[u8], p: usize, ctx: &Ctx) -> TResult<(Token, usize)> {
    need(b, p, 20)?;
    let (version, service_type, time_to_live, protocol) = (b[p], b[p + 1], b[p + 8], b[p + 9]);
    // illumos: network-order fields pushed through adr_short/adr_int32, so swapped on x86
    let field = |q: usize| {
        if ctx.illumos { le16(b, q) } else { raw_be16(b, q) }
    };
    let addr = |q: usize| {
        if ctx.illumos { ip4_rev(&b[q..q + 4]) } else { ip4(&b[q..q + 4]) }
    };
    let tok = Token::Ip {
        version,
        service_type,
        time_to_live,
        protocol,
        len: field(p + 2),
        ip_id: field(p + 4),
        offset: field(p + 6),
        cksum: field(p + 10),
        src_addr: addr(p + 12),
        dest_addr: addr(p + 16),
    };
    Ok((tok, p + 20))
}

fn socket_ex(b: &[u8], p: usize, ctx: &Ctx) -> TResult<(Token, usize)> {
    need(b, p, 8)?;
    let (sock_domain, sock_type, atype, lport_raw) =
        (raw_be16(b, p), raw_be16(b, p + 2), raw_be16(b, p + 4), raw_be16(b, p + 6));
    let (laddr, q) = address(b, p + 8, u64::from(atype))?;
    let fport_raw = be16(b, q)?;
    let (faddr, e) = address(b, q + 2, u64::from(atype))?;
    let (lport, fport) = if ctx.illumos {
        (lport_raw.swap_bytes(), fport_raw.swap_bytes()) // adr_short of a network-order port on x86
    } else {
        (lport_raw, fport_raw)
    };
    Ok((Token::Socket { sock_domain, sock_type, atype, lport, laddr, fport, faddr }, e))
}

/// 0x2e: illumos kernel 9-byte form or libbsm/OpenBSM 15-byte form (bsm.md 4.5); on illumos the next
/// token id arbitrates, user-level events preferring 15 bytes and kernel events 9.
fn old_socket(b: &[u8], p: usize, ctx: &Ctx) -> TResult<(Token, usize)> {
    let size = if !ctx.illumos {
        15
    } else {
        let (fit9, fit15) = (next_fits(b, p + 8), next_fits(b, p + 14));
        let (preferred, other, fits_preferred, fits_other) =
            if ctx.user_level { (15, 9, fit15, fit9) } else { (9, 15, fit9, fit15) };
        if fits_preferred || !fits_other { preferred } else { other }
    };
    if size == 9 {
        need(b, p, 8)?;
        let tok = Token::OldSocket9 {
            family: raw_be16(b, p),
            port: le16(b, p + 2),
            addr: ip4_rev(&b[p + 4..p + 8]),
            raw: b[p..p + 8].to_vec(),
        };
        return Ok((tok, p + 8));
    }
    need(b, p, 14)?;
    let (lport, laddr, fport, faddr) = if ctx.illumos {
        // libbsm au_to_socket on x86: ports and addresses byte-reversed
        (le16(b, p + 2), ip4_rev(&b[p + 4..p + 8]), le16(b, p + 8), ip4_rev(&b[p + 10..p + 14]))
    } else {
        (raw_be16(b, p + 2), ip4(&b[p + 4..p + 8]), raw_be16(b, p + 8), ip4(&b[p + 10..p + 14]))
    };
    let tok = Token::OldSocket15 { sock_type: raw_be16(b, p), lport, laddr, fport, faddr, raw: b[p..p + 14].to_vec() };
    Ok((tok, p + 14))
}

fn sockinet32(b: &[u8], p: usize) -> TResult<(Token, usize)> {
    need(b, p, 8)?;
    Ok((Token::SocketInet { family: raw_be16(b, p), port: raw_be16(b, p + 2), addr: ip4(&b[p + 4..p + 8]) }, p + 8))
}

fn sockinet128(b: &[u8], p: usize) -> TResult<(Token, usize)> {
    need(b, p, 20)?;
    Ok((Token::SocketInet6 { family: b[p + 1], port: raw_be16(b, p + 2), addr: ip6(&b[p + 4..p + 20]) }, p + 20))
}

fn sockunix(b: &[u8], p: usize) -> TResult<(Token, usize)> {
    let family = be16(b, p)?;
    let (mut paths, e) = cstrs(b, p + 2, 1, 1)?;
    Ok((Token::SocketUnix { family, path: paths.pop().unwrap_or_default() }, e))
}

fn tid(b: &[u8], p: usize) -> TResult<(Token, usize)> {
    need(b, p, 9)?;
    let (ttype, remote_port, local_port, ip_type) = (b[p], raw_be16(b, p + 1), raw_be16(b, p + 3), raw_be32(b, p + 5));
    if ttype != 1 {
        return Err(TokenError::Bad(format!("tid type {ttype} (only AU_IPADR = 1 is defined)")));
    }
    let (host, e) = address(b, p + 9, u64::from(ip_type))?;
    Ok((Token::Tid { remote_port, local_port, ip_type, host }, e))
}

// ---------------------------------------------------------------- small fixed tokens

fn ipc(b: &[u8], p: usize) -> TResult<(Token, usize)> {
    need(b, p, 5)?;
    Ok((Token::Ipc { ipc_type: b[p], ipc_id: raw_be32(b, p + 1) }, p + 5))
}

fn ipc_perm(b: &[u8], p: usize) -> TResult<(Token, usize)> {
    need(b, p, 28)?;
    let [uid, gid, creator_uid, creator_gid, mode, seq, key] = seven_ids(b, p);
    Ok((Token::IpcPerm { uid, gid, creator_uid, creator_gid, mode, seq, key }, p + 28))
}

fn exit(b: &[u8], p: usize) -> TResult<(Token, usize)> {
    need(b, p, 8)?;
    Ok((Token::Exit { errval: raw_be32(b, p), retval: raw_be32(b, p + 4) as i32 }, p + 8))
}

fn acl(b: &[u8], p: usize) -> TResult<(Token, usize)> {
    need(b, p, 12)?;
    Ok((Token::Acl { atype: raw_be32(b, p), value: raw_be32(b, p + 4), mode: raw_be32(b, p + 8) }, p + 12))
}

fn ace(b: &[u8], p: usize) -> TResult<(Token, usize)> {
    need(b, p, 12)?;
    let tok = Token::Ace {
        id_value: raw_be32(b, p),
        access_mask: raw_be32(b, p + 4),
        flags: raw_be16(b, p + 8),
        atype: raw_be16(b, p + 10),
    };
    Ok((tok, p + 12))
}

/// `count` u32 group ids at `p` (already checked to be there).
fn gid_list(b: &[u8], p: usize, count: usize, ctx: &mut Ctx) -> Vec<u32> {
    ctx.dropped(count);
    (0..ctx.keep(count)).map(|i| raw_be32(b, p + 4 * i)).collect()
}

fn groups_old(b: &[u8], p: usize, ctx: &mut Ctx) -> TResult<(Token, usize)> {
    need(b, p, 64)?;
    Ok((Token::Group { id: 0x34, gids: gid_list(b, p, 16, ctx) }, p + 64))
}

fn newgroups(b: &[u8], p: usize, ctx: &mut Ctx) -> TResult<(Token, usize)> {
    let k = usize::from(be16(b, p)?);
    need(b, p + 2, 4 * k)?;
    Ok((Token::Group { id: 0x3B, gids: gid_list(b, p + 2, k, ctx) }, p + 2 + 4 * k))
}

fn label(b: &[u8], p: usize, ctx: &Ctx) -> TResult<(Token, usize)> {
    need(b, p, 36)?;
    // the writer's host order; illumos assumed x86
    let (cls, comps) = (&b[p + 2..p + 4], &b[p + 4..p + 36]);
    let classification =
        if ctx.illumos { i16::from_le_bytes([cls[0], cls[1]]) } else { i16::from_be_bytes([cls[0], cls[1]]) };
    let compartments: [u32; 8] = std::array::from_fn(|i| {
        let w = [comps[4 * i], comps[4 * i + 1], comps[4 * i + 2], comps[4 * i + 3]];
        if ctx.illumos { u32::from_le_bytes(w) } else { u32::from_be_bytes(w) }
    });
    let tok =
        Token::Label { label_id: b[p], c_len: b[p + 1], classification, compartments, raw: b[p..p + 36].to_vec() };
    Ok((tok, p + 36))
}

fn trailer(b: &[u8], p: usize, ctx: &mut Ctx) -> TResult<usize> {
    need(b, p, 6)?;
    let (magic, reclen) = (raw_be16(b, p), raw_be32(b, p + 2));
    if magic != 0xB105 {
        return Err(TokenError::Bad(format!("trailer magic 0x{magic:04x} (expected 0xb105)")));
    }
    if reclen != ctx.reclen {
        return Err(TokenError::Bad(format!("trailer length {reclen} differs from header length {}", ctx.reclen)));
    }
    ctx.has_trailer = true;
    Ok(p + 6)
}

fn uuid(b: &[u8], p: usize, id: u8) -> TResult<(Token, usize)> {
    let arg_num = u8_at(b, p)?;
    need(b, p + 1, 16)?;
    let h = crate::json::hex_string(&b[p + 1..p + 17]);
    let uuid = format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32]);
    let (desc, e) = str16(b, p + 17)?;
    Ok((Token::Uuid { id, arg_num, uuid, desc }, e))
}

fn file32(b: &[u8], p: usize, ctx: &Ctx) -> TResult<(Token, usize)> {
    need(b, p, 10)?;
    let (sec, subsec) = (u64::from(raw_be32(b, p)), u64::from(raw_be32(b, p + 4)));
    let (name, e) = str16(b, p + 8)?;
    Ok((Token::File { id: 0x11, sec, subsec, time_ns: file_time_ns(sec, subsec, 0x11, ctx.illumos), name }, e))
}

fn file64(b: &[u8], p: usize) -> TResult<(Token, usize)> {
    need(b, p, 18)?;
    let (sec, subsec) = (raw_be64(b, p), raw_be64(b, p + 8));
    let (name, e) = str16(b, p + 16)?;
    Ok((Token::File { id: 0x78, sec, subsec, time_ns: file_time_ns(sec, subsec, 0x78, true), name }, e))
}

// ---------------------------------------------------------------- X-window tokens

fn xobj(b: &[u8], p: usize, id: u8, name: &'static str) -> TResult<(Token, usize)> {
    need(b, p, 8)?;
    Ok((Token::XObject { id, name, xid: raw_be32(b, p) as i32, xcreator_uid: raw_be32(b, p + 4) }, p + 8))
}

fn xproperty(b: &[u8], p: usize) -> TResult<(Token, usize)> {
    need(b, p, 8)?;
    let (xid, xcreator_uid) = (raw_be32(b, p) as i32, raw_be32(b, p + 4));
    let (name, e) = str16(b, p + 8)?;
    Ok((Token::XProperty { xid, xcreator_uid, name }, e))
}

fn xselect(b: &[u8], p: usize) -> TResult<(Token, usize)> {
    let (x_sel_text, p) = str16(b, p)?;
    let (x_sel_type, p) = str16(b, p)?;
    let (x_sel_data, p) = str16(b, p)?;
    Ok((Token::XSelection { x_sel_text, x_sel_type, x_sel_data }, p))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decode one token (id included) in a record context.
    fn one(bytes: &[u8], illumos: bool, event: u16) -> TResult<(Option<Token>, usize)> {
        let mut ctx = Ctx::new(illumos, event >= 6144, 0, 10_000);
        decode(bytes[0], bytes, 1, &mut ctx).expect("known id")
    }

    fn tok(bytes: &[u8], illumos: bool, event: u16) -> Token {
        let (t, end) = one(bytes, illumos, event).expect("decodes");
        assert_eq!(end, bytes.len());
        t.expect("a token")
    }

    fn subject_bytes(id: u8, port: &[u8], tail: &[u8]) -> Vec<u8> {
        let mut v = vec![id];
        for x in 1u32..=7 {
            v.extend_from_slice(&x.to_be_bytes());
        }
        v.extend_from_slice(port);
        v.extend_from_slice(tail);
        v
    }

    #[test]
    fn subject32_user_level_illumos_keeps_both_address_readings() {
        let b = subject_bytes(0x24, &0x31D4_1600u32.to_be_bytes(), &[15, 2, 0, 10]);
        let Token::Subject { tid, process: false, pid: 6, .. } = tok(&b, true, 6172) else { panic!() };
        assert_eq!((tid.major, tid.minor, tid.host.as_str()), (3189, 5632, "15.2.0.10"));
        let ill = tid.illumos.expect("illumos facts");
        assert_eq!((ill.rport, ill.lport, ill.port_recipe), (Some(54321), Some(22), Some("32bit")));
        assert!(ill.host_uncertain);
        assert_eq!(ill.host_reversed.as_deref(), Some("10.0.2.15"));
        // OpenBSM: no port pair, no reversal
        let Token::Subject { tid, .. } = tok(&b, false, 6172) else { panic!() };
        assert_eq!(tid.illumos, None);
    }

    #[test]
    fn process64_ex_ipv6_devexpl() {
        let mut tail = 16u32.to_be_bytes().to_vec();
        tail.extend_from_slice(&[0xFE, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        let b = subject_bytes(0x7D, &((5u64 << 32) | 77).to_be_bytes(), &tail);
        let Token::Subject { tid, process: true, .. } = tok(&b, true, 23) else { panic!() };
        assert_eq!((tid.atype, tid.host.as_str()), (16, "fe80::1"));
        let ill = tid.illumos.expect("illumos facts");
        assert_eq!((ill.rport, ill.lport, ill.port_recipe), (Some(5120), Some(19712), Some("devexpl")));
        assert!(!ill.host_uncertain && ill.host_reversed.is_none());
        // address type 7 is bad, a short address is truncated first
        let mut bad = b.clone();
        bad[37..41].copy_from_slice(&7u32.to_be_bytes());
        assert_eq!(one(&bad[..41], true, 23), Err(TokenError::Truncated));
        assert!(matches!(one(&bad, true, 23), Err(TokenError::Bad(_))));
    }

    #[test]
    fn old_socket_layout_follows_the_next_token() {
        let mut b = vec![0x2E, 0, 2, 0x16, 0, 1, 2, 3, 4];
        let with_return = [&b[..], &[0x27, 0, 0, 0, 0, 0]].concat();
        let mut ctx = Ctx::new(true, false, 0, 10);
        let (t, end) = decode(0x2E, &with_return, 1, &mut ctx).unwrap().unwrap();
        assert_eq!(end, 9);
        assert_eq!(t, Some(Token::OldSocket9 { family: 2, port: 22, addr: "4.3.2.1".into(), raw: b[1..].to_vec() }));
        b.extend_from_slice(&[0, 0x50, 9, 9, 9, 9]); // 15 bytes: user-level prefers it
        let Token::OldSocket15 { lport, laddr, fport, .. } = tok(&b, true, 6172) else { panic!() };
        assert_eq!((lport, laddr.as_str(), fport), (0x16, "4.3.2.1", 0x5000));
    }

    #[test]
    fn uauth_falls_back_to_the_upriv_layout() {
        let mut b = vec![0x3F, 1, 0, 14];
        b.extend_from_slice(b"file_dac_read\0");
        assert_eq!(tok(&b, true, 6172), Token::UsePrivilege { id: 0x3F, result: true, privs: "file_dac_read".into() });
        let mut b = vec![0x3F, 0, 3];
        b.extend_from_slice(b"ab\0");
        assert_eq!(tok(&b, true, 6172), Token::UseAuthorization { authorization: "ab".into() });
    }

    #[test]
    fn malformed_fields_and_short_layouts() {
        assert_eq!(one(&[0x21, 0, 9, 1, 0], true, 1), Err(TokenError::Bad("data token unit type 9".into())));
        assert_eq!(one(&[0x21, 0, 9], true, 1), Err(TokenError::Truncated));
        assert_eq!(one(&[0x61, 2, 0, 0], true, 1), Err(TokenError::Truncated));
        let tid = [0x61, 2, 0, 0, 0, 0, 0, 0, 0, 4, 1, 2, 3, 4];
        assert_eq!(one(&tid, true, 1), Err(TokenError::Bad("tid type 2 (only AU_IPADR = 1 is defined)".into())));
        let mut ctx = Ctx::new(true, false, 30, 10);
        let trailer = [0x13, 0xB1, 0x05, 0, 0, 0, 31];
        let err = decode(0x13, &trailer, 1, &mut ctx).unwrap();
        assert_eq!(err, Err(TokenError::Bad("trailer length 31 differs from header length 30".into())));
        assert!(!ctx.has_trailer);
    }

    #[test]
    fn illumos_byte_order_corrections() {
        let mut ip = vec![0x2B, 0x45, 0, 0x14, 0, 0x34, 0x12, 0, 0, 64, 6, 0, 0];
        ip.extend_from_slice(&[15, 2, 0, 10, 1, 0, 0, 10]);
        let Token::Ip { len, ip_id, src_addr, dest_addr, .. } = tok(&ip, true, 1) else { panic!() };
        assert_eq!((len, ip_id, src_addr.as_str(), dest_addr.as_str()), (20, 0x1234, "10.0.2.15", "10.0.0.1"));
        let mut label = vec![0x33, 1, 2, 0xFB, 0xFF];
        (0u32..8).for_each(|i| label.extend_from_slice(&i.to_le_bytes()));
        let Token::Label { classification, compartments, .. } = tok(&label, true, 1) else { panic!() };
        assert_eq!((classification, compartments), (-5, [0, 1, 2, 3, 4, 5, 6, 7]));
    }

    #[test]
    fn return_errors_by_dialect_and_event_range() {
        let ret = |status: u8, value: i32, illumos: bool, event: u16| {
            let mut b = vec![0x27, status];
            b.extend_from_slice(&value.to_be_bytes());
            let Token::Return { error, .. } = tok(&b, illumos, event) else { panic!() };
            error
        };
        assert_eq!(ret(1, 1003, true, 6172), Some("ADT_FAIL_VALUE_AUTH"));
        assert_eq!(ret(1, 2003, true, 6172), Some("PAM_SERVICE_ERR"));
        assert_eq!(ret(13, -1, true, 6172), None);
        assert_eq!(ret(13, -1, true, 1), Some("EACCES"));
        assert_eq!(ret(13, -1, false, 1), Some("EACCES"));
        assert_eq!(ret(0, 5, true, 1), None);
    }
}

//! Inputs of the fuzz targets kept as regression tests.
//!
//! A crash input a fuzzer finds goes here, as a test calling the target's
//! entry function on exactly those bytes. The runs recorded in
//! `docs/reliability.md` found none; the inputs below are the hostile
//! ones each target's limits exist for, so that the limits stay covered.

use rumpsteak_aura_reliability::{
    fuzz_frame, fuzz_handshake, fuzz_message, fuzz_monitor, fuzz_protocol, fuzz_quic_handshake,
    fuzz_tls_handshake,
};

#[test]
fn a_million_levels_of_nesting_is_refused_without_overflowing_the_stack() {
    // `Tree::Node` is variant 1, `Tree::Leaf` variant 0.
    let mut deep = vec![1u8; 1_000_000];
    deep.push(0);
    fuzz_message(&deep);
    // Sequences inside sequences, as deep.
    fuzz_message(&vec![1u8; 1_000_000]);
}

#[test]
fn labels_at_and_past_the_length_limit() {
    for len in [255u16, 256, 0x3fff] {
        let mut frame = vec![1, 1, (len as u8) | 0x80, (len >> 7) as u8];
        frame.resize(frame.len() + usize::from(len), b'x');
        fuzz_frame(&frame);
    }
    // A length whose varint never ends.
    fuzz_frame(&[1, 1, 0xff, 0xff, 0xff, 0xff, 0xff]);
}

#[test]
fn a_protocol_whose_copies_pass_the_node_limit_is_refused() {
    // Each choice copies what follows into both branches: twenty of them
    // would make a million nodes.
    let src = "choice at A { l: { A -> B: X; } r: { A -> B: Y; } }\n".repeat(20);
    fuzz_protocol(src.as_bytes());
    // Blocks nested past the depth limit.
    let deep = format!("{}{}", "rec X { A -> B: M; ".repeat(200), "}".repeat(200));
    fuzz_protocol(deep.as_bytes());
}

#[test]
fn a_monitor_given_transitions_it_never_handed_out() {
    // Built-in protocol 2, role 0, then raw transitions (op 5) mixed with
    // steps it expects (op 4).
    let mut input = vec![2, 0];
    for k in 0..50u8 {
        input.extend([5, k, 255 - k, 4, k, 0]);
    }
    fuzz_monitor(&input);
}

#[test]
fn handshakes_with_names_at_the_length_limit_and_oversize_frames() {
    let name = |s: &[u8]| {
        let mut v = vec![s.len() as u8];
        v.extend_from_slice(s);
        v
    };
    let long = vec![b'r'; 255];
    let mut hello = b"RSKA".to_vec();
    hello.extend([2, 1]);
    hello.extend(name(&long));
    hello.extend(name(b"Server"));
    hello.extend(name(b"s"));
    hello.push(1);
    // Framed acceptor mode: the hello is longer than one length byte can
    // say, so it arrives cut into frames.
    let mut input = vec![1];
    for chunk in hello.chunks(255) {
        input.push(chunk.len() as u8);
        input.extend_from_slice(chunk);
    }
    fuzz_handshake(&input);
    // Raw acceptor mode: a frame length of 4 GiB.
    fuzz_handshake(&[0, 0xff, 0xff, 0xff, 0xff, 1, 2, 3]);
    // WebSocket acceptor: an upgrade request that never ends its headers.
    let mut ws = vec![3];
    ws.extend(b"GET /rumpsteak HTTP/1.1\r\n");
    ws.extend(b"X-Filler: aaaaaaaaaaaaaaaa\r\n".repeat(2000));
    fuzz_handshake(&ws);
}

#[test]
fn tls_records_past_the_size_limit_and_a_flood_of_empty_ones() {
    // Listener, raw: a handshake record announcing 64 KiB - 1 (TLS allows
    // 16 KiB + 256), then the dialer closes.
    let mut huge = vec![0, 0x16, 0x03, 0x01, 0xff, 0xff];
    huge.extend(vec![0u8; 1000]);
    fuzz_tls_handshake(&huge);
    // Listener, records: thousands of empty handshake records.
    fuzz_tls_handshake(&[vec![1], vec![0; 5000]].concat());
    // Dialer, raw: an alert in place of the server hello, then a record
    // of a type TLS does not have.
    fuzz_tls_handshake(&[
        2, 0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28, 0x63, 0x03, 0x03, 0, 0,
    ]);
    // Dialer, plain frames: a frame of 4 GiB where a plain listener's
    // refusal would be.
    fuzz_tls_handshake(&[2, 0xff, 0xff, 0xff, 0xff, b'R', b'S', b'K', b'A']);
}

#[test]
fn quic_datagram_floods_and_oversize_hellos() {
    // Sixty-four datagrams of 2040 bytes that look like Initial packets of
    // version 1 (long header, fixed bit), with garbage after.
    let mut flood = vec![0];
    for i in 0..64u8 {
        flood.push(255);
        let mut d = vec![0xc0, 0, 0, 0, 1, 8];
        d.extend([i; 8]);
        d.resize(255 * 8, i);
        flood.extend(d);
    }
    fuzz_quic_handshake(&flood);
    // A dialer with a good certificate that sends two hundred frames of
    // 255 bytes of garbage as its hello.
    let mut garbage = vec![1];
    for _ in 0..200 {
        garbage.push(255);
        garbage.extend([0xa5; 255]);
    }
    fuzz_quic_handshake(&garbage);
    // A listener with a good certificate that answers the hello with
    // nothing and closes its stream.
    fuzz_quic_handshake(&[2]);
}

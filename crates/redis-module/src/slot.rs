//! Redis Cluster hash slots (CRC16/XMODEM of the key or of its `{hash tag}`, modulo 16384).
//! `RedisModule_ClusterKeySlot` only exists from Redis 7.4, and this module supports 7.0.

const SLOTS: u16 = 16384;

fn crc16_xmodem(bytes: &[u8]) -> u16 {
    bytes.iter().fold(0u16, |mut crc, &byte| {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
        crc
    })
}

/// The part of a key that decides its slot: the text inside the first `{...}` when that is
/// non-empty, else the whole key (the rule in the Redis Cluster specification).
fn hashed_part(key: &[u8]) -> &[u8] {
    if let Some(open) = key.iter().position(|&c| c == b'{') {
        if let Some(len) = key[open + 1..].iter().position(|&c| c == b'}') {
            if len > 0 {
                return &key[open + 1..open + 1 + len];
            }
        }
    }
    key
}

pub fn key_slot(key: &[u8]) -> u16 {
    crc16_xmodem(hashed_part(key)) % SLOTS
}

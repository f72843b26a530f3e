//! The plaintext inside a share re-sealed to a node, as the node parses it.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok((request, binding, share)) = quorate_crypto::rewrap::decode_node_share(data) {
        assert_eq!(&*quorate_crypto::rewrap::encode_node_share(&request, &binding, &share), data);
    }
});

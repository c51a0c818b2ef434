<?php
// Verify an smshub webhook (Standard Webhooks) with PHP's standard library only.
//
//   WEBHOOK_SECRET=whsec_... php verify_webhook.php WEBHOOK_ID WEBHOOK_TIMESTAMP \
//       WEBHOOK_SIGNATURE < body.json
//
// The three arguments are the request's webhook-id, webhook-timestamp and
// webhook-signature headers, stdin is the raw body exactly as received. Exit code 0 and
// "ok" when the delivery is genuine, 1 and the reason otherwise. In a web page, call
// verify() with file_get_contents('php://input') and $_SERVER['HTTP_WEBHOOK_ID'],
// $_SERVER['HTTP_WEBHOOK_TIMESTAMP'], $_SERVER['HTTP_WEBHOOK_SIGNATURE'].

// Deliveries signed more than this many seconds away from our clock are refused (replays).
const TOLERANCE_S = 5 * 60;

function verify(string $secret, string $webhookId, string $timestamp, string $signatures, string $body): void
{
    if (!ctype_digit($timestamp)) {
        throw new RuntimeException('webhook-timestamp is not a number');
    }
    if (abs(time() - (int) $timestamp) > TOLERANCE_S) {
        throw new RuntimeException('webhook-timestamp is more than 5 minutes away');
    }
    $prefix = 'whsec_';
    if (strncmp($secret, $prefix, strlen($prefix)) === 0) {
        $secret = substr($secret, strlen($prefix));
    }
    $key = base64_decode($secret, true);
    if ($key === false) {
        throw new RuntimeException('the secret is not base64 after whsec_');
    }
    $expected = base64_encode(hash_hmac('sha256', "$webhookId.$timestamp.$body", $key, true));
    // During a secret rotation the header holds two signatures, space-separated.
    foreach (explode(' ', $signatures) as $candidate) {
        $parts = explode(',', $candidate, 2);
        if (count($parts) === 2 && $parts[0] === 'v1' && hash_equals($expected, $parts[1])) {
            return;
        }
    }
    throw new RuntimeException('no signature matches');
}

if (PHP_SAPI === 'cli' && realpath($argv[0]) === __FILE__) {
    if ($argc !== 4) {
        fwrite(STDERR, "usage: WEBHOOK_SECRET=whsec_... php verify_webhook.php ID TIMESTAMP SIGNATURE < body\n");
        exit(2);
    }
    try {
        verify((string) getenv('WEBHOOK_SECRET'), $argv[1], $argv[2], $argv[3], stream_get_contents(STDIN));
    } catch (RuntimeException $e) {
        fwrite(STDERR, 'rejected: ' . $e->getMessage() . "\n");
        exit(1);
    }
    echo "ok\n";
    exit(0);
}

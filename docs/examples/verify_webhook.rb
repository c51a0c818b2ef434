# Verify an smshub webhook (Standard Webhooks) with Ruby's standard library only.
#
#   WEBHOOK_SECRET=whsec_... ruby verify_webhook.rb WEBHOOK_ID WEBHOOK_TIMESTAMP \
#       WEBHOOK_SIGNATURE < body.json
#
# The three arguments are the request's webhook-id, webhook-timestamp and
# webhook-signature headers, stdin is the raw body exactly as received. Exit code 0 and
# "ok" when the delivery is genuine, 1 and the reason otherwise. In Rails or Sinatra, call
# verify with request.raw_post (or request.body.read) and request.headers["webhook-id"] etc.
require "openssl"

# Deliveries signed more than this many seconds away from our clock are refused (replays).
TOLERANCE_S = 5 * 60

def verify(secret, webhook_id, timestamp, signatures, body)
  raise ArgumentError, "webhook-timestamp is not a number" unless timestamp.match?(/\A\d+\z/)
  if (Time.now.to_i - timestamp.to_i).abs > TOLERANCE_S
    raise ArgumentError, "webhook-timestamp is more than 5 minutes away"
  end

  key = secret.delete_prefix("whsec_").unpack1("m0") # strict base64
  digest = OpenSSL::HMAC.digest("SHA256", key, "#{webhook_id}.#{timestamp}.".b + body.b)
  expected = [digest].pack("m0")
  # During a secret rotation the header holds two signatures, space-separated.
  signatures.split(" ").each do |candidate|
    version, value = candidate.split(",", 2)
    return if version == "v1" && value && OpenSSL.secure_compare(value, expected)
  end
  raise ArgumentError, "no signature matches"
end

if $PROGRAM_NAME == __FILE__
  if ARGV.length != 3
    warn "usage: WEBHOOK_SECRET=whsec_... ruby verify_webhook.rb ID TIMESTAMP SIGNATURE < body"
    exit 2
  end
  begin
    verify(ENV.fetch("WEBHOOK_SECRET", ""), ARGV[0], ARGV[1], ARGV[2], $stdin.binmode.read)
  rescue ArgumentError => e
    warn "rejected: #{e.message}"
    exit 1
  end
  puts "ok"
end

// Verify an smshub webhook (Standard Webhooks) with Go's standard library only.
//
//	WEBHOOK_SECRET=whsec_... go run verify_webhook.go WEBHOOK_ID WEBHOOK_TIMESTAMP \
//	    WEBHOOK_SIGNATURE < body.json
//
// The three arguments are the request's webhook-id, webhook-timestamp and
// webhook-signature headers, stdin is the raw body exactly as received. Exit code 0 and
// "ok" when the delivery is genuine, 1 and the reason otherwise. In an http.Handler, read
// r.Body with io.ReadAll and call verify with r.Header.Get("webhook-id") and the others.
package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// Deliveries signed more than this many seconds away from our clock are refused (replays).
const toleranceS = 5 * 60

func verify(secret, webhookID, timestamp, signatures string, body []byte) error {
	sentAt, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return errors.New("webhook-timestamp is not a number")
	}
	if diff := time.Now().Unix() - sentAt; diff > toleranceS || diff < -toleranceS {
		return errors.New("webhook-timestamp is more than 5 minutes away")
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return errors.New("the secret is not base64 after whsec_")
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(webhookID + "." + timestamp + "."))
	mac.Write(body)
	expected := mac.Sum(nil)
	// During a secret rotation the header holds two signatures, space-separated.
	for _, candidate := range strings.Split(signatures, " ") {
		version, value, found := strings.Cut(candidate, ",")
		if !found || version != "v1" {
			continue
		}
		given, err := base64.StdEncoding.DecodeString(value)
		if err == nil && hmac.Equal(given, expected) {
			return nil
		}
	}
	return errors.New("no signature matches")
}

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: WEBHOOK_SECRET=whsec_... go run verify_webhook.go ID TIMESTAMP SIGNATURE < body")
		os.Exit(2)
	}
	body, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cannot read the body:", err)
		os.Exit(2)
	}
	if err := verify(os.Getenv("WEBHOOK_SECRET"), os.Args[1], os.Args[2], os.Args[3], body); err != nil {
		fmt.Fprintln(os.Stderr, "rejected:", err)
		os.Exit(1)
	}
	fmt.Println("ok")
}

#!/usr/bin/env bash
# socle's admission webhook at 100,000 promoted digests, on a real
# kube-apiserver (built by .ci/k8s.sh): AdmissionReviews of pods with 1
# and 10 containers sent directly to the webhook (p50/p99 round trip,
# decisions/s, and socle's own decision-time histogram), then the same
# pods created through the API server with dry run, with and without the
# webhooks, to show socle's share of the API server's time.
#
# Kyverno and the sigstore policy-controller are not measured: neither is
# built here (both need their own controllers, CRDs and images); Kyverno
# publishes 42.7 ms average per admission request.
#
#   bench/admission.sh [DIGESTS] [REVIEWS]    # writes bench/out/admission-report.md
source "$(dirname "$0")/lib.sh"
digests=${1:-100000}
reviews=${2:-20000}
build_socle
(cd "$root" && go build -o "$bin/bench-admission" ./bench/cmd/admission)
SOCLE_K8S=${SOCLE_K8S:-$("$root/.ci/k8s.sh")}
export SOCLE_K8S
work="$out/admission"
rm -rf "$work"
mkdir -p "$work"
"$bin/bench-admission" -socle "$bin/socle" -work "$work" -digests "$digests" -reviews "$reviews" | tee "$work/results"

awk -v digests="$digests" -v reviews="$reviews" '
  $1 == "fill" { fill = $3 }
  $1 == "serve-ready" { ready = $2 }
  $1 == "direct" { d50[$2] = $3; d99[$2] = $4; rate[$2] = $5 }
  $1 == "decision" { dcount = $2; dmean = $3; dp99 = $4 }
  $1 == "apiserver-with" { w50[$2] = $3; w99[$2] = $4 }
  $1 == "apiserver-without" { o50[$2] = $3; o99[$2] = $4 }
  $1 == "socle-peak-kb" { peak = $2 }
  END {
    printf "# socle admission, %d promoted digests\n\n", digests
    printf "Store filled in %.0f s; socle serve ready (snapshot read) in %.2f s; peak RSS %.0f MiB.\n\n", fill, ready, peak / 1024
    printf "Directly to the webhook (%d reviews per pod size, 8 at once, TLS):\n\n", reviews
    printf "| containers | p50 ms | p99 ms | decisions/s |\n|---|---|---|---|\n"
    for (n = 1; n <= 10; n += 9) printf "| %d | %s | %s | %s |\n", n, d50[n], d99[n], rate[n]
    printf "\nsocle'"'"'s own decision time (socle_admission_decision_seconds, allow): %d decisions, mean %s ms, p99 within the %s ms bucket.\n\n", dcount, dmean, dp99
    printf "Through the real API server (dry-run pod creations, one at a time):\n\n"
    printf "| containers | with socle p50 / p99 ms | without p50 / p99 ms | socle'"'"'s share of p50 |\n|---|---|---|---|\n"
    for (n = 1; n <= 10; n += 9) printf "| %d | %s / %s | %s / %s | %.0f%% |\n", n, w50[n], w99[n], o50[n], o99[n], (w50[n] - o50[n]) / w50[n] * 100
    printf "\nTarget: p99 under 1 ms for the decision itself. Kyverno publishes 42.7 ms average per admission request.\n"
  }' "$work/results" | tee "$out/admission-report.md"

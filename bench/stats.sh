# Sourced by the benchmarks: summaries of a list of microsecond timings on
# stdin (space or newline separated), divided by $1 (1000: ms, 1e6: s).
median() { tr ' ' '\n' | grep . | sort -n | awk -v d="$1" '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.2f", m / d }'; }
p90() { tr ' ' '\n' | grep . | sort -n | awk -v d="$1" '{ v[NR] = $1 } END { printf "%.2f", v[int(NR * 0.9 + 0.5)] / d }'; }

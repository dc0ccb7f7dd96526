/* The default per-second prices (DESIGN.md, "Metering"), in dollars; a
 * control plane may configure others. */
#ifndef COMMON_PRICES_H
#define COMMON_PRICES_H

#define PRICE_GB_SECOND 0.00000386
#define PRICE_CPU_SECOND 0.00000772
#define PRICE_STORAGE_GB_SECOND 0.00000006
#define PRICE_EGRESS_GB 0.05

#endif

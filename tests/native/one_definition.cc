// A second translation unit including every CPU kernel header, linked into cpu_kernels_test: the link fails if a
// header defines a function that is neither inline nor a template (C++'s one-definition rule).
#include "common.h"
#include "elementwise.h"
#include "fused.h"
#include "matmul.h"
#include "memory.h"
#include "optim.h"
#include "reduce.h"
#include "strided.h"
#include "vmath.h"

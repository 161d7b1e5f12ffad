/* dgm/dgm.h - everything a plugin or an embedding program includes. */
#ifndef DGM_DGM_H
#define DGM_DGM_H

#include "dgm/config.h"
#include "dgm/error.h"
#include "dgm/export.h"
#include "dgm/graph.h"
#include "dgm/io.h"
#include "dgm/plugin.h"
#include "dgm/profile.h"
#include "dgm/rng.h"
#include "dgm/tensor.h"

#endif

/* SPDX-License-Identifier: MIT */
/*
 * export/export-int.h - what the export drivers in c/export/ share with
 * the framework (QEMU's headers in block/export/).  Not a public header.
 *
 * A built-in driver is declared here and listed in blk_exp_drivers[] in
 * export.c.
 */
#ifndef AIOLAB_EXPORT_INT_H
#define AIOLAB_EXPORT_INT_H

#include <aiolab/aiolab.h>
#include <aiolab/export.h>

/* The built-in drivers (each in its own file). */
extern const BlockExportDriver blk_exp_nbd;       /* nbd-export.c */
extern const BlockExportDriver blk_exp_vhost_user_blk;  /* vhost-user-blk.c */

#endif

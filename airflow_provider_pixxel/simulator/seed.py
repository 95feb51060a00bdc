"""The believable workspace a fresh simulator starts with, the same for the same seed.

Projects, the real Pixxel satellites (TD1, TD2) plus Sentinel-2, bandsets, preset indices, insight and
workflow blocks with their input specs, two saved workflows, a STAC archive of TD1/TD2/Sentinel-2 scenes
around four farming regions, one cloud store, and one processed AOI with assets and a visualization.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_pixxel.simulator.state import format_offset, format_seconds, format_space, format_t

if TYPE_CHECKING:
    from airflow_provider_pixxel.simulator.state import SimulatorState

TD1_ID = "0004ab8d-0ad1-4d62-8a3f-fe18a7000e70"
TD2_ID = "0005c5bb-0bd2-4c80-9393-4a808341c54c"
SENTINEL2_ID = "0002a3a3-00a2-4b55-842b-44d8202c6d60"

# Seeded objects carry timestamps from before any simulated "now", fixed so seeds are reproducible.
SEED_EPOCH = datetime(2025, 3, 3, 9, 30, tzinfo=timezone.utc).timestamp()

REGIONS = (
    ("Bengaluru rural", 77.55, 12.95),
    ("Punjab wheat belt", 75.85, 30.90),
    ("Central Iowa", -93.62, 42.03),
    ("Nile delta", 31.10, 30.80),
)

LEGEND_COLORS = ("#d7191c", "#fdae61", "#ffffbf", "#abdda4", "#2b83ba")
LEGEND_LABELS = ("Very Low", "Low", "Moderate", "High", "Very High")


def square(lon: float, lat: float, half_side: float) -> list[list[list[float]]]:
    """A closed square ring around a point, as GeoJSON Polygon coordinates."""
    w, e, s, n = (round(v, 6) for v in (lon - half_side, lon + half_side, lat - half_side, lat + half_side))
    return [[[w, s], [e, s], [e, n], [w, n], [w, s]]]


def _td_bands(count: int, start_nm: float, step_nm: float) -> list[dict[str, Any]]:
    return [
        {
            "name": f"B{index + 1:03d}",
            "offset": 0.0,
            "scale": 2e-05,
            "spatial_resolution": 5,
            "wavelength": round(start_nm + index * step_nm, 1),
        }
        for index in range(count)
    ]


def _satellites() -> list[dict[str, Any]]:
    sentinel_bands = [
        ("B01", 60, 443),
        ("B02", 10, 490),
        ("B03", 10, 560),
        ("B04", 10, 665),
        ("B05", 20, 705),
        ("B06", 20, 740),
        ("B07", 20, 783),
        ("B08", 10, 842),
        ("B8A", 20, 865),
        ("B09", 60, 945),
        ("B11", 20, 1610),
        ("B12", 20, 2190),
    ]
    return [
        {
            "id": TD1_ID,
            "name": "Pixxel-TD1",
            "bands": _td_bands(24, 470.0, 12.5),
            "collections": [
                {
                    "id": "pixxel-td1",
                    "name": "Pixxel TD1 L2A",
                    "provider": "pixxel",
                    "queryables": ["eo:cloud_cover", "view:off_nadir", "datetime"],
                    "rescale": [0, 50000],
                }
            ],
            "rgb_composite": {"red": "B016", "green": "B008", "blue": "B002"},
        },
        {
            "id": TD2_ID,
            "name": "Pixxel-TD2",
            "bands": _td_bands(24, 470.0, 12.5),
            "collections": [
                {
                    "id": "pixxel-td2",
                    "name": "Pixxel TD2 L2A",
                    "provider": "pixxel",
                    "queryables": ["eo:cloud_cover", "view:off_nadir", "datetime"],
                    "rescale": [0, 50000],
                }
            ],
            "rgb_composite": {"red": "B016", "green": "B008", "blue": "B002"},
        },
        {
            "id": SENTINEL2_ID,
            "name": "Sentinel-2",
            "bands": [
                {"name": n, "offset": -0.1, "scale": 0.0001, "spatial_resolution": r, "wavelength": float(w)}
                for n, r, w in sentinel_bands
            ],
            "collections": [
                {
                    "id": "sentinel-2-l2a",
                    "name": "Sentinel-2 Level-2A",
                    "provider": "planetary",
                    "queryables": ["eo:cloud_cover", "datetime"],
                    "rescale": [0, 10000],
                }
            ],
            "rgb_composite": {"red": "B04", "green": "B03", "blue": "B02"},
        },
    ]


def _stac_item(state: SimulatorState, collection: str, index: int, lon: float, lat: float) -> dict[str, Any]:
    rng = state.rng()
    acquired = SEED_EPOCH - (index * 17 + rng.randint(0, 9)) * 86400 - rng.randint(0, 3600)
    acquired_day = datetime.fromtimestamp(acquired, timezone.utc)
    processed_day = acquired_day + timedelta(days=rng.randint(2, 20))
    cloud = round(rng.uniform(0.0, 35.0), 1)
    half = 0.06 if collection != "sentinel-2-l2a" else 0.45
    ring = square(lon, lat, half)
    if collection == "sentinel-2-l2a":
        platform = "sentinel-2a" if index % 2 == 0 else "sentinel-2b"
        item_id = (
            f"S2{'A' if index % 2 == 0 else 'B'}_MSIL2A_{acquired_day:%Y%m%dT%H%M%S}"
            f"_R{rng.randint(1, 143):03d}"
            f"_T43PGQ_{processed_day:%Y%m%dT%H%M%S}"
        )
        bands = ["B02", "B03", "B04", "B08", "B11", "B12"]
        gsd = 10.0
    else:
        platform = "TD1" if collection == "pixxel-td1" else "TD2"
        item_id = (
            f"{platform}_{rng.randint(100, 999_999):06d}_{acquired_day:%Y%m%d}_L2A_{processed_day:%Y%m%d}"
            f"_{5:03d}01024"
        )
        bands = [f"B{b:03d}" for b in range(1, 25)]
        gsd = 5.0
    href_base = f"https://data.pixxel.space/{collection}/{item_id}"
    return {
        "id": item_id,
        "type": "Feature",
        "collection": collection,
        "stac_version": "1.0.0",
        "stac_extensions": [
            "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
            "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
            "https://stac-extensions.github.io/view/v1.0.0/schema.json",
        ],
        "bbox": [ring[0][0][0], ring[0][0][1], ring[0][2][0], ring[0][2][1]],
        "geometry": {"type": "Polygon", "coordinates": ring},
        "properties": {
            "title": item_id,
            "description": f"{platform} L2A surface reflectance scene",
            "datetime": format_seconds(acquired),
            "startdatetime": format_seconds(acquired - 12),
            "created": format_seconds(processed_day.timestamp()),
            "updated": format_seconds(processed_day.timestamp()),
            "platform": platform,
            "constellation": "pixxel" if platform.startswith("TD") else "sentinel-2",
            "instruments": ["VNIR"] if platform.startswith("TD") else ["msi"],
            "eo:cloud_cover": cloud,
            "gsd": gsd,
            "altitude": 550.0 if platform.startswith("TD") else 786.0,
            "license": "proprietary" if platform.startswith("TD") else "CC-BY-SA-3.0-IGO",
            "proj:code": "EPSG:4326",
            "proj:shape": [2400, 2400],
            "proj:transform": [gsd, 0.0, ring[0][0][0], 0.0, -gsd, ring[0][2][1]],
            "rd:product_level": "L2A",
            "rd:type": "Reflectance",
            "rd:sat_id": platform,
            "rd:anomalous_pixels": round(rng.uniform(0, 0.02), 4),
            "rd:earth_sun_distance": round(rng.uniform(0.983, 1.017), 4),
            "view:off_nadir": round(rng.uniform(0.5, 18.0), 1),
            "view:scene_center_lat": lat,
            "view:scene_center_lon": lon,
            "view:sun_azimuth": round(rng.uniform(100, 160), 1),
            "view:sun_elevation": round(rng.uniform(35, 70), 1),
        },
        "assets": {
            "data": {
                "href": f"{href_base}/{item_id}.tif",
                "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                "title": "Surface reflectance",
                "roles": ["data"],
                "eo:bands": [
                    {"name": b, "common_name": "", "center_wavelength": 0.0, "fwhm": 0.01} for b in bands
                ],
                "raster:bands": [
                    {"nodata": 0, "offset": 0, "scale": 2e-05, "spatial_resolution": gsd} for _ in bands
                ],
            },
            "mask": {
                "href": f"{href_base}/{item_id}.mask.tif",
                "type": "image/tiff; application=geotiff",
                "title": "Quality mask",
                "roles": ["metadata"],
            },
            "thumbnail": {
                "href": f"{href_base}/{item_id}.jpeg",
                "type": "image/jpeg",
                "title": "RGB thumbnail",
                "roles": ["thumbnail"],
            },
        },
        "links": [
            {"rel": "self", "href": f"https://stac.pixxel.space/collections/{collection}/items/{item_id}"},
            {"rel": "collection", "href": f"https://stac.pixxel.space/collections/{collection}"},
        ],
    }


def _collection(
    collection_id: str, title: str, description: str, license_: str, provider: str
) -> dict[str, Any]:
    return {
        "id": collection_id,
        "type": "Collection",
        "title": title,
        "description": description,
        "license": license_,
        "stac_version": "1.0.0",
        "stac_extensions": ["https://stac-extensions.github.io/eo/v1.1.0/schema.json"],
        "summaries": {"platform": [title], "gsd": [5 if provider == "Pixxel" else 10]},
        "extent": {
            "spatial": {"bbox": [[-180.0, -90.0, 180.0, 90.0]]},
            "temporal": {"interval": [["2022-04-01T00:00:00Z", format_seconds(SEED_EPOCH)]]},
        },
        "providers": [
            {"name": provider, "roles": ["producer", "licensor"], "url": "https://www.pixxel.space"}
        ],
        "links": [
            {
                "rel": "self",
                "href": f"https://stac.pixxel.space/collections/{collection_id}",
                "type": "application/json",
            },
            {"rel": "items", "href": f"https://stac.pixxel.space/collections/{collection_id}/items"},
        ],
        "created_at": format_t(SEED_EPOCH - 400 * 86400),
        "updated_at": format_t(SEED_EPOCH - 3 * 86400),
    }


def legend_for(rng_seed: int, rescale: tuple[float, float] = (-1.0, 1.0)) -> list[dict[str, Any]]:
    """Five equal-interval legend classes over ``rescale`` with areas that add up to 100 %."""
    low, high = rescale
    width = (high - low) / len(LEGEND_COLORS)
    weights = [((rng_seed * (i + 3)) % 7) + 1 for i in range(len(LEGEND_COLORS))]
    total_area = 4_000_000.0
    items = []
    for i, (color, label) in enumerate(zip(LEGEND_COLORS, LEGEND_LABELS, strict=False)):
        share = weights[i] / sum(weights)
        items.append(
            {
                "min": round(low + i * width, 4),
                "max": round(low + (i + 1) * width, 4),
                "color": color,
                "label": label,
                "area": round(total_area * share, 2),
                "area_percentage": round(100 * share, 2),
            }
        )
    return items


def _block(
    state: SimulatorState, name: str, title: str, version: str, kind: str, inputs: list, outputs: list
) -> dict[str, Any]:
    block_id = state.new_id()
    return {
        "id": state.new_id(),
        "block_status": "released",
        "created_at": format_t(SEED_EPOCH - 90 * 86400),
        "err": "",
        "spec": {
            "id": block_id,
            "version_id": state.new_id(),
            "name": name,
            "title": title,
            "version": version,
            "kind": kind,
            "type": "processing",
            "status": 1,
            "description": f"{title} ({kind} block)",
            "catalog_content_url": f"https://docs.pixxel.space/blocks/{name}",
            "supported_collections_id": ["pixxel-td1", "pixxel-td2", "sentinel-2-l2a"],
            "inputs": inputs,
            "outputs": outputs,
        },
    }


def _raster_input(name: str, bands: list[str]) -> dict[str, Any]:
    return {
        "format": "raster",
        "name": name,
        "type": "url",
        "description": "Input satellite imagery",
        "properties": {"bands": bands},
    }


def _date_input(name: str, description: str) -> dict[str, Any]:
    return {"format": "date", "name": name, "type": "string", "description": description}


def seed_workspace(state: SimulatorState) -> None:
    """Fill a fresh state with the seeded workspace."""
    state.org_id = state.new_id()
    state.user_id = state.new_id()

    for name, title in (
        ("crop-monitoring", "Crop Monitoring"),
        ("water-resources", "Water Resources"),
        ("forest-carbon", "Forest Carbon"),
    ):
        project_id = state.new_id()
        state.projects[project_id] = {
            "id": project_id,
            "name": name,
            "title": title,
            "org_id": state.org_id,
            "members_count": 3 + len(state.projects),
            "created_at": format_t(SEED_EPOCH - 200 * 86400),
            "updated_at": format_t(SEED_EPOCH - 10 * 86400),
            "metadata": {"description": f"{title} analyses", "owner": "gis-team"},
        }

    for satellite in _satellites():
        state.satellites[satellite["id"]] = satellite

    for name, description, captures, bands in (
        (
            "Agriculture",
            "Agriculture bandset: chlorophyll red edge and NIR",
            1,
            [(474, 7), (546, 9), (664, 12)],
        ),
        ("Full VNIR", "All VNIR bands at 5 m", 2, [(470 + 12.5 * i, 1) for i in range(24)]),
        (
            "Water quality",
            "Blue-green bands tuned for turbidity and algae",
            1,
            [(443, 5), (490, 8), (560, 11)],
        ),
    ):
        bandset_id = state.new_id()
        state.bandsets[bandset_id] = {
            "id": bandset_id,
            "name": name,
            "description": description,
            "captures": captures,
            "bands": [{"name": f"B{int(wl):03d}", "wavelength": float(wl)} for wl, _ in bands],
        }

    for name, expression, expression_type, rescale, colormap, description in (
        ("NDVI", "(B08-B04)/(B08+B04)", "index", [-1, 1], "rdylgn", "Normalized difference vegetation index"),
        ("NDWI", "(B03-B08)/(B03+B08)", "index", [-1, 1], "blues", "Normalized difference water index"),
        (
            "EVI",
            "2.5*(B08-B04)/(B08+6*B04-7.5*B02+1)",
            "index",
            [-1, 1],
            "viridis",
            "Enhanced vegetation index",
        ),
        ("True colour", "B04,B03,B02", "composite", [0, 3000], "", "Natural colour RGB composite"),
        ("NIR", "B08", "grayscale", [0, 5000], "greys_r", "Near-infrared reflectance"),
    ):
        index_id = state.new_id()
        state.indices[index_id] = {
            "id": index_id,
            "name": name,
            "description": description,
            "expression": expression,
            "expression_type": expression_type,
            "rescale": rescale,
            "colormap": colormap,
            "satellite_id": SENTINEL2_ID,
            "type": "preset",
            "bands": sorted(
                {
                    token
                    for token in expression.replace(",", " ")
                    .replace("(", " ")
                    .replace(")", " ")
                    .replace("-", " ")
                    .replace("+", " ")
                    .replace("*", " ")
                    .replace("/", " ")
                    .split()
                    if token.startswith("B")
                }
            ),
            "created_at": format_space(SEED_EPOCH - 300 * 86400),
            "updated_at": format_space(SEED_EPOCH - 300 * 86400),
        }

    crop_inputs = [
        _raster_input("input_image", ["B02", "B03", "B04", "B08"]),
        _date_input("start_date", "Analysis start date"),
        _date_input("end_date", "Analysis end date"),
    ]
    crop_outputs = [{"format": "raster", "name": "crop_map", "type": "url", "description": "Crop type map"}]
    state.blocks.extend(
        [
            _block(
                state,
                "cropclassification",
                "Crop classification",
                "1.0.0",
                "insight",
                crop_inputs,
                crop_outputs,
            ),
            _block(
                state,
                "cropclassification",
                "Crop classification",
                "1.1.0",
                "insight",
                crop_inputs,
                crop_outputs,
            ),
            _block(
                state,
                "waterbodydetection",
                "Water body detection",
                "2.0.1",
                "insight",
                [
                    _raster_input("input_image", ["B03", "B08"]),
                    {
                        "format": "number",
                        "name": "threshold",
                        "type": "number",
                        "description": "NDWI threshold",
                    },
                ],
                [{"format": "vector", "name": "water_mask", "type": "url", "description": "Water polygons"}],
            ),
            _block(
                state,
                "cloudmask",
                "Cloud mask",
                "1.2.0",
                "workflow",
                [_raster_input("input_image", [])],
                [{"format": "raster", "name": "mask", "type": "url"}],
            ),
            _block(
                state,
                "atmcorrection",
                "Atmospheric correction",
                "3.0.0",
                "workflow",
                [_raster_input("input_image", [])],
                [{"format": "raster", "name": "reflectance", "type": "url"}],
            ),
            _block(
                state,
                "fieldboundaries",
                "Field boundary delineation",
                "1.0.4",
                "workflow",
                [_raster_input("input_image", [])],
                [{"format": "vector", "name": "fields", "type": "url"}],
            ),
        ]
    )

    project_ids = list(state.projects)
    for name, description, block_names, cost in (
        (
            "field-boundaries-weekly",
            "Cloud mask, correct and delineate field boundaries",
            ["cloudmask", "atmcorrection", "fieldboundaries"],
            120,
        ),
        (
            "ndvi-timeseries",
            "Atmospheric correction then NDVI statistics per field",
            ["atmcorrection", "fieldboundaries"],
            80,
        ),
    ):
        workflow_id = state.new_id()
        nodes: list[dict[str, Any]] = []
        previous: list[str] = []
        for block_name in block_names:
            block = next(b for b in state.blocks if b["spec"]["name"] == block_name)
            node = {
                "name": block_name,
                "block": {"id": block["spec"]["id"], "name": block_name, "version": block["spec"]["version"]},
                "depends_on": list(previous),
                "estimated_time_duration": 240 + 60 * len(nodes),
            }
            nodes.append(node)
            previous = [block_name]
        state.workflows[workflow_id] = {
            "id": workflow_id,
            "project_id": project_ids[0],
            "legacy_project_id": "",
            "name": name,
            "description": description,
            "created_by": state.user_id,
            "created_at": format_t(SEED_EPOCH - 60 * 86400),
            "updated_at": format_t(SEED_EPOCH - 5 * 86400),
            "estimated_cost": cost,
            "val_errors": [],
            "spec": nodes,
        }

    for collection_id, title, description, license_, provider in (
        (
            "pixxel-td1",
            "Pixxel-TD1",
            "Hyperspectral L2A scenes from Pixxel TD1 (Shakuntala)",
            "proprietary",
            "Pixxel",
        ),
        (
            "pixxel-td2",
            "Pixxel-TD2",
            "Hyperspectral L2A scenes from Pixxel TD2 (Anand)",
            "proprietary",
            "Pixxel",
        ),
        (
            "sentinel-2-l2a",
            "Sentinel-2 L2A",
            "Sentinel-2 surface reflectance (open data)",
            "CC-BY-SA-3.0-IGO",
            "ESA",
        ),
    ):
        state.collections[collection_id] = _collection(collection_id, title, description, license_, provider)
        for index in range(12):
            _, lon, lat = REGIONS[index % len(REGIONS)]
            item = _stac_item(state, collection_id, index, lon, lat)
            state.items[item["id"]] = item

    store_id = state.new_id()
    state.stores[store_id] = {
        "id": store_id,
        "name": "analytics-landing-zone",
        "type": "S3",
        "configs": {"bucket": "acme-eo-landing", "region": "ap-south-1", "path_prefix": "pixxel/"},
        "labels": {"env": "prod", "team": "gis"},
        "created_by": state.user_id,
        "created_at": format_seconds(SEED_EPOCH - 40 * 86400),
        "updated_at": format_seconds(SEED_EPOCH - 40 * 86400),
    }
    state.store_secrets = {store_id: {"access_key_id": "AKIASIMULATOR", "secret_access_key": "seeded"}}

    _seed_processed_aoi(state, project_ids[0])


def _seed_processed_aoi(state: SimulatorState, project_id: str) -> None:
    name, lon, lat = REGIONS[0]
    items = [i for i in state.items.values() if i["collection"] == "pixxel-td2"][:2]
    aoi_id = state.new_id()
    created = SEED_EPOCH - 20 * 86400
    state.aois[aoi_id] = {
        "aoi_id": aoi_id,
        "name": f"{name} farms",
        "description": "Seeded AOI over smallholder farms east of Bengaluru",
        "satellite_id": TD2_ID,
        "provider": "pixxel",
        "project_id": project_id,
        "item_ids": [i["id"] for i in items],
        "geometry": {"type": "Polygon", "coordinates": square(lon, lat, 0.05)},
        "is_favourite": True,
        "created_at": format_offset(created),
        "updated_at": format_offset(created + 600),
        "user_id": state.user_id,
        "seeded": True,
    }
    for item in items:
        for asset_type in ("stac_item", "mosaic"):
            asset_id = state.new_id()
            state.assets[asset_id] = {
                "id": asset_id,
                "aoi_id": aoi_id,
                "asset_type": asset_type,
                "name": f"{item['id']}{'_mosaic' if asset_type == 'mosaic' else ''}",
                "description": "This asset is mosaic file" if asset_type == "mosaic" else "Source scene",
                "date": item["properties"]["datetime"][:10],
                "band_list": [b["name"] for b in item["assets"]["data"]["eo:bands"]][:8],
                "resolution": 5.0,
                "path": item["assets"]["data"]["href"],
                "visualization_id": "",
                "created_at": format_space(created + 300),
                "updated_at": format_space(created + 600),
            }
    ndvi = next(i for i in state.indices.values() if i["name"] == "NDVI")
    visualization_id = state.new_id()
    dates = sorted({a["date"].replace("-", "_") for a in state.assets.values() if a["aoi_id"] == aoi_id})
    state.visualizations[visualization_id] = {
        "id": visualization_id,
        "aoi_id": aoi_id,
        "index_id": ndvi["id"],
        "src_asset_ids": [
            a["id"] for a in state.assets.values() if a["aoi_id"] == aoi_id and a["asset_type"] == "mosaic"
        ],
        "resolution": 5.0,
        "tenant_id": state.org_id,
        "user_id": state.user_id,
        "created_at": format_space(created + 900),
        "updated_at": format_space(created + 1200),
        "legend": {
            d: {"dynamic": legend_for(1 + n * 3), "theoretical": legend_for(2 + n * 3)}
            for n, d in enumerate(dates)
        },
        "salt": 1,
        "seeded": True,
    }

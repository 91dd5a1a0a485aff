"""Sample records for the demo upstream systems (invented people and numbers)."""

VEHICLES = [
    {"plate_number": "桂A·G1024", "brand": "红旗 H5", "vehicle_type": "公务轿车",
     "department": "机关事务管理局", "status": "在用", "mileage_km": 48210,
     "driver_name": "李建国", "driver_id_number": "450102198305120031",
     "driver_phone": "13907710021", "purchase_year": 2021, "fuel": "汽油"},
    {"plate_number": "桂A·G2048", "brand": "比亚迪 汉 EV", "vehicle_type": "新能源轿车",
     "department": "机关事务管理局", "status": "在用", "mileage_km": 21877,
     "driver_name": "王海燕", "driver_id_number": "450103199011234526",
     "driver_phone": "13877102234", "purchase_year": 2023, "fuel": "纯电"},
    {"plate_number": "桂A·G3301", "brand": "东风 风行", "vehicle_type": "商务车",
     "department": "财政厅", "status": "维修中", "mileage_km": 96530,
     "driver_name": "陈志强", "driver_id_number": "450105197802144418",
     "driver_phone": "13607715560", "purchase_year": 2017, "fuel": "汽油"},
    {"plate_number": "桂A·G4512", "brand": "广汽 埃安 S", "vehicle_type": "新能源轿车",
     "department": "市机关事务中心", "status": "在用", "mileage_km": 12004,
     "driver_name": "黄丽华", "driver_id_number": "450107199207075821",
     "driver_phone": "13978123345", "purchase_year": 2024, "fuel": "纯电"},
]

ROOMS = [
    {"room_id": "ZW-A-0301", "building": "行政中心 A 座", "floor": 3, "area_m2": 18.0,
     "usage": "办公室", "occupant_department": "机关事务管理局", "occupant_name": "张三",
     "standard_m2": 18.0, "over_standard": False},
    {"room_id": "ZW-A-0312", "building": "行政中心 A 座", "floor": 3, "area_m2": 36.5,
     "usage": "会议室", "occupant_department": "机关事务管理局", "occupant_name": "",
     "standard_m2": 40.0, "over_standard": False},
    {"room_id": "ZW-B-1105", "building": "行政中心 B 座", "floor": 11, "area_m2": 24.0,
     "usage": "办公室", "occupant_department": "财政厅", "occupant_name": "赵敏",
     "standard_m2": 18.0, "over_standard": True},
]

ASSETS = [
    {"asset_code": "ZC-2023-000187", "name": "联想 ThinkCentre 台式计算机", "category": "通用设备",
     "department": "机关事务管理局", "original_value": 5880.00, "net_value": 3920.00,
     "acquired": "2023-03-14", "custodian": "张三", "location": "行政中心 A 座 301"},
    {"asset_code": "ZC-2021-004410", "name": "公务用车 红旗 H5", "category": "交通运输设备",
     "department": "机关事务管理局", "original_value": 186000.00, "net_value": 111600.00,
     "acquired": "2021-06-30", "custodian": "李建国", "location": "机关车库"},
    {"asset_code": "ZC-2019-010020", "name": "会议室投影系统", "category": "专用设备",
     "department": "财政厅", "original_value": 42000.00, "net_value": 8400.00,
     "acquired": "2019-11-02", "custodian": "赵敏", "location": "行政中心 B 座 1101"},
]
